import { fsetXattr, setXattr, withPath, xattrSupported } from '../platform/index.js';
import { displayName, toBytes, type ByteString } from '../repo/tree/names.js';

/** Namespaces only root may write: security labels, ACLs, trusted.* (user.* is anyone's). */
const PRIVILEGED = ['security.', 'system.posix_acl_', 'trusted.'];

/**
 * Writes extended attributes back: user.* always, security.*, ACLs and trusted.* only as root (as a
 * normal user they are skipped, like ownership). A destination that cannot hold them is told once.
 */
export class XattrWriter {
  private readonly isRoot = process.getuid?.() === 0;
  private readonly told = new Set<string>();

  constructor(private readonly warn: (message: string) => void) {}

  /** The attributes this process may write; the first privileged one left out as a normal user is told once. */
  private wanted(path: ByteString, xattrs: [Buffer, Buffer][] | undefined): [Buffer, Buffer][] {
    if (!xattrs?.length) return [];
    if (this.isRoot) return xattrs;
    return xattrs.filter(([name]) => {
      if (!PRIVILEGED.some((p) => name.toString('latin1').startsWith(p))) return true;
      if (!this.told.has('privileged')) {
        this.told.add('privileged');
        this.warn(`${displayName(path)}: extended attribute ${name.toString('latin1')} not restored (only root may write security.*, system.posix_acl_* and trusted.* attributes); further ones like it are skipped silently`);
      }
      return false;
    });
  }

  private failed(path: ByteString, name: Buffer, err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code !== 'ENOTSUP' && code !== 'EPERM' && code !== 'ERR_KBRACKUP_NO_ADDON') throw err;
    if (this.told.has(code)) return;
    this.told.add(code);
    this.warn(`${displayName(path)}: extended attribute ${name.toString('latin1')} not restored (${code === 'ERR_KBRACKUP_NO_ADDON' ? 'this build has no extended-attribute support' : code === 'ENOTSUP' ? 'the destination file system does not support it' : 'not permitted'}); further ones like it are skipped silently`);
  }

  /** Onto an open file (the temp file before its rename). */
  onFd(fd: number, path: ByteString, xattrs: [Buffer, Buffer][] | undefined): void {
    for (const [name, value] of this.wanted(path, xattrs)) {
      try {
        if (!xattrSupported()) throw Object.assign(new Error('no addon'), { code: 'ERR_KBRACKUP_NO_ADDON' });
        fsetXattr(fd, name, value);
      } catch (err) {
        this.failed(path, name, err);
      }
    }
  }

  /** Onto a path, not following a symlink. */
  onPath(path: ByteString, xattrs: [Buffer, Buffer][] | undefined): void {
    for (const [name, value] of this.wanted(path, xattrs)) {
      try {
        if (!xattrSupported()) throw Object.assign(new Error('no addon'), { code: 'ERR_KBRACKUP_NO_ADDON' });
        withPath(toBytes(path), (p) => setXattr(p, name, value));
      } catch (err) {
        this.failed(path, name, err);
      }
    }
  }
}
