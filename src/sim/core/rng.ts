/** Seeded PRNG (splitmix32): the only source of randomness in the engine, so runs replay exactly. */
export class Rng {
  private state: number;

  // The state is kept as a signed 32-bit integer so V8 keeps it a small integer (no heap numbers).
  constructor(seed: number) {
    this.state = seed | 0;
  }

  /** Next 32-bit unsigned value. */
  nextU32(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return this.nextU32() % n;
  }

  getState(): number {
    return this.state >>> 0;
  }

  setState(s: number): void {
    this.state = s | 0;
  }
}
