import { IntegrityError } from '../../errors.js';
import { isId } from '../layout.js';
import { asText, displayName, fromBytes, fromText, toBytes, type ByteString } from './names.js';

/**
 * One entry of a folder's tree object (docs/ARCHITECTURE.md "Trees"). Times are nanoseconds since the
 * epoch and inode/device numbers are decimal strings: they exceed 2^53. Names and link targets are
 * byte strings (names.ts).
 */
interface EntryBase {
  name: ByteString;
  mode: number;
  uid: number;
  gid: number;
  mtime: string;
  /** Extended attributes as [name, value] byte pairs, sorted by name. */
  xattrs?: [Buffer, Buffer][];
}

/** A folder; `tree` is the id of its own tree object. */
export interface DirEntry extends EntryBase {
  type: 'dir';
  tree: string;
}

/** A symbolic link; `linkTarget` is what it points to, as bytes. */
export interface SymlinkEntry extends EntryBase {
  type: 'symlink';
  linkTarget: ByteString;
}

/** A run of a file's content: a blob (by id) or a hole of `length` zero bytes. */
export type ContentPart = { id: string; length: number } | { hole: number };

/** A file's content: its parts inline, or (many parts) in a list object of their own. */
export type Content = { parts: ContentPart[] } | { list: string; count: number };

/** A regular file. */
export interface FileEntry extends EntryBase {
  type: 'file';
  size: number;
  ctime: string;
  ino: string;
  /** Hard links: the link count and device, when more than one name points at the inode. */
  links?: number;
  dev?: string;
  /** SHA-256 of the content; absent for a file stored with holes (its parts' keyed ids vouch for it). */
  sha256?: string;
  content: Content;
}

export type TreeEntry = DirEntry | SymlinkEntry | FileEntry;

/** Parts kept inline in a file entry; longer content lists go to a list object of their own. */
export const MAX_INLINE_PARTS = 1000;

/** A content part as JSON: `["<id>",length]` for data, `[length]` for a hole. */
export function encodePart(p: ContentPart): string {
  return 'id' in p ? `["${p.id}",${p.length}]` : `[${p.hole}]`;
}

/** `"key":"text"` for a name that is valid UTF-8, else `"rawkey":"base64"`. */
function nameField(key: 'name' | 'target', value: ByteString): string {
  const text = asText(value);
  return text !== undefined ? `"${key}":${JSON.stringify(text)}` : `"raw${key}":"${toBytes(value).toString('base64')}"`;
}

/**
 * The JSON line (without newline) of an entry. Written field by field rather than through an object:
 * a backup serialises every entry of every changed folder, and the fixed key order makes equal folders
 * give equal bytes (and so the same tree id).
 */
export function encodeEntry(e: TreeEntry): string {
  let out = `{${nameField('name', e.name)},"type":"${e.type}","mode":${e.mode},"uid":${e.uid},"gid":${e.gid},"mtime":"${e.mtime}"`;
  if (e.type === 'dir') out += `,"tree":"${e.tree}"`;
  else if (e.type === 'symlink') out += `,${nameField('target', e.linkTarget)}`;
  else {
    out += `,"size":${e.size},"ctime":"${e.ctime}","ino":"${e.ino}"`;
    if (e.links !== undefined) out += `,"links":${e.links},"dev":"${e.dev}"`;
    if (e.sha256 !== undefined) out += `,"sha256":"${e.sha256}"`;
    if ('parts' in e.content) out += `,"content":[${e.content.parts.map(encodePart).join(',')}]`;
    else out += `,"list":"${e.content.list}","parts":${e.content.count}`;
  }
  if (e.xattrs?.length) out += `,"xattrs":[${e.xattrs.map(([n, v]) => `["${n.toString('base64')}","${v.toString('base64')}"]`).join(',')}]`;
  return `${out}}`;
}

/** The farthest time from the epoch a JavaScript Date holds, in nanoseconds: ls and restore turn times into Dates. */
const MAX_TIME_NS = 8_640_000_000_000_000_000_000n;
/** Longest file name Linux takes (NAME_MAX): no backup can have read a longer one. */
const MAX_NAME_BYTES = 255;

/** Reads the fields of one parsed JSON line, naming the object and the field in every error. */
class Fields {
  constructor(
    private readonly v: Record<string, unknown>,
    private readonly object: string,
    readonly where: string,
  ) {}

  fail(field: string, what: string): IntegrityError {
    return new IntegrityError(this.object, `${this.where}: field "${field}" ${what}`);
  }

  integer(field: string, max = Number.MAX_SAFE_INTEGER): number {
    const x = this.v[field];
    if (!Number.isSafeInteger(x) || (x as number) < 0 || (x as number) > max) throw this.fail(field, `is not an integer in [0, ${max}]: ${JSON.stringify(x)?.slice(0, 40)}`);
    return x as number;
  }

  /** Nanoseconds since the epoch: negative before 1970, and within what a Date can show (±8.64e21 ns). */
  time(field: string): string {
    const x = this.v[field];
    if (typeof x !== 'string' || !/^(0|-?[1-9][0-9]{0,21})$/.test(x) || (x.length > 21 && (BigInt(x) > MAX_TIME_NS || BigInt(x) < -MAX_TIME_NS))) {
      throw this.fail(field, `is not a time in nanoseconds: ${JSON.stringify(x)?.slice(0, 40)}`);
    }
    return x;
  }

  decimal(field: string): string {
    const x = this.v[field];
    if (typeof x !== 'string' || !/^(0|[1-9][0-9]{0,24})$/.test(x)) throw this.fail(field, `is not a decimal number string: ${JSON.stringify(x)?.slice(0, 40)}`);
    return x;
  }

  id(field: string): string {
    const x = this.v[field];
    if (!isId(x)) throw this.fail(field, `is not an id (64 hex digits): ${JSON.stringify(x)?.slice(0, 80)}`);
    return x;
  }

  sha256(field: string): string {
    const x = this.v[field];
    if (!isId(x)) throw this.fail(field, `is not a SHA-256 (64 hex digits): ${JSON.stringify(x)?.slice(0, 80)}`);
    return x;
  }

  bytes(key: 'name' | 'target'): ByteString {
    const text = this.v[key];
    const raw = this.v[`raw${key}`];
    if (typeof text === 'string') return fromText(text);
    if (typeof raw === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(raw)) return fromBytes(Buffer.from(raw, 'base64'));
    throw this.fail(key, 'is missing or not a string');
  }
}

/** One content part from its JSON form; `where` names the file in errors. */
export function decodePart(x: unknown, object: string, where: string): ContentPart {
  if (Array.isArray(x) && x.length === 2 && isId(x[0]) && Number.isSafeInteger(x[1]) && x[1] > 0) return { id: x[0], length: x[1] };
  if (Array.isArray(x) && x.length === 1 && Number.isSafeInteger(x[0]) && x[0] > 0) return { hole: x[0] };
  throw new IntegrityError(object, `${where}: malformed content part ${JSON.stringify(x)?.slice(0, 100)}`);
}

/** Parse and check one entry line; every malformed field is an IntegrityError naming object and field. */
export function decodeEntry(line: string, object: string, lineNo: number): TreeEntry {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new IntegrityError(object, `line ${lineNo} is not JSON`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new IntegrityError(object, `line ${lineNo} is not an entry`);
  const v = value as Record<string, unknown>;
  const f = new Fields(v, object, `line ${lineNo}`);
  const name = f.bytes('name');
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) throw f.fail('name', `is not a file name: ${JSON.stringify(displayName(name))}`);
  if (name.length > MAX_NAME_BYTES) throw f.fail('name', `is ${name.length} bytes long, more than a file name can be (${MAX_NAME_BYTES}): ${JSON.stringify(displayName(name.slice(0, 40)))}…`);
  const g = new Fields(v, object, `entry ${JSON.stringify(asText(name) ?? name)}`);
  const base = { name, mode: g.integer('mode', 0o7777), uid: g.integer('uid', 2 ** 32 - 1), gid: g.integer('gid', 2 ** 32 - 1), mtime: g.time('mtime') };
  const xattrs = decodeXattrs(v.xattrs, g);
  const extra = xattrs ? { xattrs } : {};
  switch (v.type) {
    case 'dir':
      return { type: 'dir', ...base, tree: g.id('tree'), ...extra };
    case 'symlink':
      return { type: 'symlink', ...base, linkTarget: g.bytes('target'), ...extra };
    case 'file': {
      const size = g.integer('size');
      const entry: FileEntry = { type: 'file', ...base, size, ctime: g.time('ctime'), ino: g.decimal('ino'), content: { parts: [] }, ...extra };
      if (v.sha256 !== undefined) entry.sha256 = g.sha256('sha256');
      if (v.links !== undefined) {
        entry.links = g.integer('links');
        entry.dev = g.decimal('dev');
      }
      if (v.list !== undefined) entry.content = { list: g.id('list'), count: g.integer('parts') };
      else if (Array.isArray(v.content) && v.content.length <= MAX_INLINE_PARTS) entry.content = { parts: v.content.map((p) => decodePart(p, object, g.where)) };
      else throw g.fail('content', 'is missing or not a list of parts');
      if ('parts' in entry.content) {
        const total = entry.content.parts.reduce((n, p) => n + ('id' in p ? p.length : p.hole), 0);
        if (total !== size) throw g.fail('content', `adds up to ${total} bytes, but size is ${size}`);
      }
      return entry;
    }
    default:
      throw g.fail('type', `is not dir, file or symlink: ${JSON.stringify(v.type)?.slice(0, 40)}`);
  }
}

function decodeXattrs(x: unknown, f: Fields): [Buffer, Buffer][] | undefined {
  if (x === undefined) return undefined;
  const b64 = (s: unknown) => typeof s === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
  if (!Array.isArray(x) || !x.every((p) => Array.isArray(p) && p.length === 2 && b64(p[0]) && b64(p[1]))) throw f.fail('xattrs', 'is not a list of [name, value] base64 pairs');
  return x.map((p: [string, string]) => [Buffer.from(p[0], 'base64'), Buffer.from(p[1], 'base64')]);
}
