/** Types of scripts/node-build.mjs for the TypeScript that imports it (tests, bench). */
export declare const OUT: string;
export declare function isFresh(): boolean;
export declare function build(): Promise<void>;
export declare function ensureBuilt(): Promise<void>;
