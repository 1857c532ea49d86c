import { NotFoundError, TargetError, describeError } from '../../errors.js';
import { networkErrorCode } from '../network.js';

/** SFTP status codes (draft-ietf-secsh-filexfer-02) that ssh2 puts on `err.code`. */
export const SFTP_STATUS = { eof: 1, noSuchFile: 2, permissionDenied: 3, failure: 4, noConnection: 6, connectionLost: 7, unsupported: 8 } as const;

/** The SFTP status code of an error, if the server answered with one. */
export function sftpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * A TargetError for an SFTP failure. Status answers from the server are permanent except lost
 * connections; errors without a status come from the SSH transport (closed channel, "No response from
 * server", resets, timeouts) and are transient; local file errors (string codes such as ENOENT) are not.
 */
export function sftpError(target: string, object: string | undefined, err: unknown): TargetError {
  if (err instanceof TargetError) return err;
  const status = sftpStatus(err);
  if (status === SFTP_STATUS.noSuchFile && object !== undefined) return new NotFoundError(target, object, { cause: err });
  if (status === SFTP_STATUS.permissionDenied) return new TargetError(target, object, 'permission denied on the SFTP server', { cause: err });
  if (status !== undefined) {
    const transient = status === SFTP_STATUS.noConnection || status === SFTP_STATUS.connectionLost;
    return new TargetError(target, object, `${describeError(err)} (SFTP status ${status})`, { transient, cause: err });
  }
  const netCode = networkErrorCode(err);
  if (netCode) return new TargetError(target, object, `connection failed (${netCode})`, { transient: true, cause: err });
  const code = (err as NodeJS.ErrnoException)?.code;
  return new TargetError(target, object, describeError(err), { transient: typeof code !== 'string', cause: err });
}
