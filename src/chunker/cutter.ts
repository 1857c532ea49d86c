/** A stateful cutter: fed bytes in order, it says where the current chunk ends. It never holds the data. */
export interface Cutter {
  /** Scan `data`, continuing the current chunk: how many leading bytes belong to it, and whether it ends right after them. */
  update(data: Uint8Array): { consumed: number; boundary: boolean };
  /** Start a new file. */
  reset(): void;
}
