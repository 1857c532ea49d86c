import type { Codec } from '../compress/codec.js';

/** Where a chunk's encrypted blob lives: a byte range of a stored object. */
export interface BlobLocation {
  object: string;
  offset: number;
  length: number;
  rawLength: number;
  codec: Codec;
}

/** A chunk of a file: its keyed id (hex) and where it is stored. */
export interface ChunkRef extends BlobLocation {
  id: string;
}

/** Metadata common to every tree entry; times are nanoseconds since the epoch, as decimal strings. */
interface EntryBase {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: string;
}

export interface DirEntry extends EntryBase {
  type: 'dir';
}

export interface SymlinkEntry extends EntryBase {
  type: 'symlink';
  target: string;
}

/** A regular file; its `chunks` chunk lines follow it in the tree. */
export interface FileEntry extends EntryBase {
  type: 'file';
  size: number;
  ctime: string;
  ino: string;
  sha256: string;
  chunks: number;
}

export type TreeEntry = DirEntry | SymlinkEntry | FileEntry;

/** One JSON line of a tree: an entry, or a chunk of the file entry before it. */
export type ChunkLine = [id: string, object: string, offset: number, length: number, rawLength: number, codec: Codec];

/** Serialise a chunk reference as a tree line. */
export function chunkLine(ref: ChunkRef): string {
  const line: ChunkLine = [ref.id, ref.object, ref.offset, ref.length, ref.rawLength, ref.codec];
  return JSON.stringify(line);
}
