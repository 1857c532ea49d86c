import { createReadStream } from 'node:fs';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  type CompletedPart,
  type CreateMultipartUploadCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';

/** S3 refuses uploads of more parts than this. */
const MAX_PARTS = 10_000;
const MiB = 1024 * 1024;

/** How one multipart upload is cut and driven. */
export interface MultipartOptions {
  partSize: number;
  concurrency: number;
  /** Ask for per-part CRC32 checksums (the SDK's default when it computes request checksums). */
  checksum: boolean;
}

/** The part size used for an object: the configured one, grown (in whole MiB) to stay within 10,000 parts. */
export function partSizeFor(size: number, configured: number): number {
  const needed = Math.ceil(size / MAX_PARTS);
  return needed <= configured ? configured : Math.ceil(needed / MiB) * MiB;
}

/**
 * Uploads `file` as a multipart object, each part streamed from its byte range of the file so memory
 * stays at a few stream buffers per part in flight (unlike lib-storage's Upload, which buffers parts).
 * A failure stops new parts, waits for those in flight, and aborts the upload so no parts linger.
 */
export async function uploadMultipart(
  client: S3Client,
  create: CreateMultipartUploadCommandInput,
  file: string,
  size: number,
  options: MultipartOptions,
): Promise<void> {
  const { Bucket, Key } = create;
  const partSize = partSizeFor(size, options.partSize);
  const count = Math.ceil(size / partSize);
  const ChecksumAlgorithm = options.checksum ? 'CRC32' : undefined;
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ ...create, ChecksumAlgorithm }));
  const parts: CompletedPart[] = [];
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < count) {
      const index = next++;
      const start = index * partSize;
      const length = Math.min(partSize, size - start);
      const body = createReadStream(file, { start, end: start + length - 1 });
      try {
        const PartNumber = index + 1;
        const res = await client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: body, ContentLength: length, ChecksumAlgorithm }));
        parts[index] = { PartNumber, ETag: res.ETag, ChecksumCRC32: res.ChecksumCRC32 };
      } catch (err) {
        failure ??= { err };
      } finally {
        body.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, count) }, worker));
  try {
    if (failure) throw failure.err;
    await client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
    throw err;
  }
}
