import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { NotFoundError, TargetError } from '../../errors.js';
import { mapStreamErrors } from '../streams.js';
import type { ByteRange, ObjectInfo, PutSource, Target } from '../target.js';
import { redactUrl, type S3Config } from './config.js';
import { DeleteBatcher } from './delete-batcher.js';
import { s3Error, type S3ErrorContext } from './errors.js';
import { uploadMultipart } from './multipart.js';

/** The SDK warns on the console unless it has a logger; failures reach the user as TargetErrors instead. */
const SILENT_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Answers of stores without multi-object delete (e.g. GCS's XML API) or that insist on Content-MD5. */
const NO_MULTI_DELETE = new Set(['NotImplemented', 'MissingContentMD5', 'InvalidDigest', 'InvalidRequest', 'MethodNotAllowed']);

/** A repository under a key prefix of an S3 (or S3-compatible) bucket. */
export class S3Target implements Target {
  readonly description: string;
  private readonly client: S3Client;
  private readonly root: string;
  private readonly ctx: S3ErrorContext;
  private readonly deletes = new DeleteBatcher((keys) => this.deleteKeys(keys));
  private multiDelete = true;

  constructor(private readonly config: S3Config) {
    // On Node 20 the SDK prints a multi-line notice that it will need Node 22 from 2027; a text block on
    // stderr would break the JSON log stream (the image runs Node 24). An explicit user setting wins.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const endpoint = config.endpoint ? redactUrl(config.endpoint) : undefined;
    this.description = `s3://${config.bucket}${config.prefix ? `/${config.prefix}` : ''}${endpoint ? ` at ${endpoint}` : ''}`;
    this.ctx = { target: this.description, bucket: config.bucket, endpoint };
    this.root = config.prefix ? `${config.prefix}/` : '';
    this.client = new S3Client({
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      credentials: config.credentials,
      requestChecksumCalculation: config.requestChecksums,
      // RetryingTarget owns retries; SDK retries on top would multiply attempts and hide them from the log.
      maxAttempts: 1,
      logger: SILENT_LOGGER,
      requestHandler: {
        connectionTimeout: config.connectionTimeoutMs,
        requestTimeout: config.requestTimeoutMs,
        throwOnRequestTimeout: true,
      },
    });
  }

  private key(name: string): string {
    return this.root + name;
  }

  private fail(name: string | undefined, err: unknown): TargetError {
    return s3Error(this.ctx, name, err);
  }

  /** Checks that the bucket exists and is reachable; buckets are not created (their region, policy and lifecycle are the owner's choice). */
  async prepare(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 404) {
        throw new TargetError(
          this.description,
          undefined,
          `bucket "${this.config.bucket}" does not exist; create it first (kbrackup does not create buckets: their region, access policy, versioning and lifecycle rules are yours to choose)`,
          { cause: err },
        );
      }
      throw this.fail(undefined, err);
    }
  }

  private objectParams(name: string): PutObjectCommandInput {
    return {
      Bucket: this.config.bucket,
      Key: this.key(name),
      StorageClass: this.config.storageClass as StorageClass | undefined,
      ServerSideEncryption: this.config.sse as ServerSideEncryption | undefined,
      SSEKMSKeyId: this.config.sseKmsKeyId,
    };
  }

  async put(name: string, source: PutSource): Promise<void> {
    const params = this.objectParams(name);
    try {
      if ('bytes' in source) {
        await this.client.send(new PutObjectCommand({ ...params, Body: source.bytes, ContentLength: source.bytes.byteLength }));
        return;
      }
      const size = source.size ?? (await stat(source.file)).size;
      if (size >= this.config.multipartThreshold) {
        const checksum = (await this.client.config.requestChecksumCalculation()) === 'WHEN_SUPPORTED';
        await uploadMultipart(this.client, params, source.file, size, {
          partSize: this.config.partSize,
          concurrency: this.config.partConcurrency,
          checksum,
        });
        return;
      }
      const body = createReadStream(source.file);
      try {
        await this.client.send(new PutObjectCommand({ ...params, Body: body, ContentLength: size }));
      } finally {
        body.destroy();
      }
    } catch (err) {
      throw this.fail(name, err);
    }
  }

  async get(name: string, range?: ByteRange): Promise<Readable> {
    // An empty range cannot be expressed as an HTTP Range; only the object's existence matters then.
    if (range?.length === 0) {
      if ((await this.head(name)) === undefined) throw new NotFoundError(this.description, name);
      return Readable.from([]);
    }
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.config.bucket,
          Key: this.key(name),
          Range: range ? `bytes=${range.offset}-${range.offset + range.length - 1}` : undefined,
        }),
      );
      return mapStreamErrors(res.Body as Readable, (err) => this.fail(name, err));
    } catch (err) {
      throw this.fail(name, err);
    }
  }

  async head(name: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: this.key(name) }));
      return { name, size: res.ContentLength ?? 0, modified: res.LastModified?.getTime() };
    } catch (err) {
      const mapped = this.fail(name, err);
      if (mapped instanceof NotFoundError) return undefined;
      throw mapped;
    }
  }

  async *list(dir: string): AsyncIterable<ObjectInfo> {
    const prefix = dir === '' ? this.root : `${this.key(dir)}/`;
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.config.bucket, Prefix: prefix, ContinuationToken: token }));
      } catch (err) {
        throw this.fail(dir, err);
      }
      for (const object of page.Contents ?? []) {
        // Keys ending in '/' are folder markers made by consoles and other tools, not objects.
        if (object.Key === undefined || object.Key.endsWith('/')) continue;
        yield { name: object.Key.slice(this.root.length), size: object.Size ?? 0, modified: object.LastModified?.getTime() };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(name: string): Promise<void> {
    try {
      await this.deletes.delete(this.key(name));
    } catch (err) {
      throw this.fail(name, err);
    }
  }

  private async deleteKeys(keys: string[]): Promise<Map<string, unknown>> {
    const Bucket = this.config.bucket;
    if (keys.length > 1 && this.multiDelete) {
      try {
        const res = await this.client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
        return new Map(
          (res.Errors ?? []).map((e) => [e.Key ?? '', Object.assign(new Error(e.Message ?? e.Code ?? 'delete failed'), { name: e.Code ?? 'Error' })]),
        );
      } catch (err) {
        if (!NO_MULTI_DELETE.has((err as Error).name)) throw err;
        this.multiDelete = false;
      }
    }
    const failures = new Map<string, unknown>();
    await Promise.all(keys.map((Key) => this.client.send(new DeleteObjectCommand({ Bucket, Key })).catch((err: unknown) => failures.set(Key, err))));
    return failures;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
