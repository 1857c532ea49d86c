/**
 * What Linux file systems offer that Node's fs does not: the holes of sparse files (SEEK_DATA /
 * SEEK_HOLE) and extended attributes that never follow symlinks, through a small Node-API addon.
 *
 *   for (const { offset, length } of dataExtents(fd, stat.size)) ...read and store that range...
 *   for (const name of listXattrs(path)) attrs.push([name, getXattr(path, name)]);
 *   fsetXattr(tempFd, name, value); // restore, before the rename
 *
 * Paths of 4096 bytes or more go through withPath / withPathAsync (long-path.ts).
 *
 * Without the addon (a build that did not compile it), dataExtents gives one extent and the xattr
 * calls throw NativeUnavailableError; system errors are SystemError with Node's code, syscall and path.
 */
export { addonUnavailableReason } from './addon.js';
export { NativeUnavailableError, SystemError } from './errors.js';
export { withPath, withPathAsync } from './long-path.js';
export { dataExtents, seekData, seekHole, sparseSupported, type Extent } from './sparse.js';
export { fgetXattr, flistXattrs, fsetXattr, getXattr, listXattrs, readAllXattrs, setXattr, xattrSupported, type FilePath, type XattrName } from './xattr.js';
export { fstatFd, lstatPath, type Lstat } from './lstat.js';
