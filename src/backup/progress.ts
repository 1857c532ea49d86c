/** Live counters of a backup run, shared by the pipeline and whoever reports progress. */
export class Progress {
  readonly start = Date.now();
  filesDone = 0;
  dirsDone = 0;
  bytesDone = 0;
  bytesRead = 0;
  dataAdded = 0;
  dataAddedPacked = 0;
  errors = 0;
  readonly current = new Set<string>();

  /** restic's `status` message. */
  status(): Record<string, unknown> {
    return {
      message_type: 'status',
      seconds_elapsed: Math.round((Date.now() - this.start) / 1000),
      files_done: this.filesDone,
      bytes_done: this.bytesDone,
      bytes_read: this.bytesRead,
      data_added: this.dataAdded,
      error_count: this.errors,
      current_files: [...this.current].slice(0, 4),
    };
  }
}
