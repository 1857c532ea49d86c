/** One scenario's figures for the closing note of issue 15: how often it was tried and how much data it lost. */
export interface Figures {
  scenario: string;
  trials: number;
  /** Bytes of source data (or whole files) that a restore did not give back as they were; must be 0. */
  dataLost: number;
  /** Anything else worth stating (faults injected, retries, warnings). */
  [detail: string]: string | number;
}

/** Prints a scenario's figures as one `FIGURES {...}` line, collected from the test output for the note. */
export function reportFigures(figures: Figures): void {
  console.log(`FIGURES ${JSON.stringify(figures)}`);
}
