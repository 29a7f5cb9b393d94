/** Colours of page sizes in the IOVA map and its legend: small pages cool, large blocks warm. */
const COLOURS: Record<number, string> = {
  [0x1000]: '#4ea1ff',
  [0x1_0000]: '#a371f7',
  [0x10_0000]: '#3fb950',
  [0x20_0000]: '#3fb950',
  [0x100_0000]: '#d8a33a',
  [0x4000_0000]: '#f0883e',
};

export const pageColour = (size: number): string => COLOURS[size] ?? '#e5c07b';
