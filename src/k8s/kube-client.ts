/**
 * The @kubernetes/client-node side of the integration, for the snapshot orchestrator only: that pod
 * holds no repository secrets and does no backup, so it can afford the ~110 MiB RSS the library costs
 * (the backup pod's Events and Lease use the small client in apiserver.ts instead).
 */
import { ApiException, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, Observable, type ConfigurationOptions } from '@kubernetes/client-node';
import { describeError, KbrackupError } from '../errors.js';
import { ApiStatusError, statusMessage } from './apiserver.js';

/** The three typed clients the orchestrator uses, and the per-request options that bound each call. */
export interface KubeClients {
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
  /** Pass to every call: aborts a request that has no answer within the timeout. */
  options: ConfigurationOptions;
}

/** The in-cluster configuration (service account token, re-read as kubelet rotates it), or the one a test made. */
export function inClusterConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromCluster();
  return kc;
}

/** Typed clients whose requests each give up after timeoutMs. */
export function kubeClients(kc: KubeConfig, timeoutMs = 30_000): KubeClients {
  const options: ConfigurationOptions = {
    middleware: [
      {
        pre: (context) => {
          context.setSignal(AbortSignal.timeout(timeoutMs));
          return new Observable(Promise.resolve(context));
        },
        post: (context) => new Observable(Promise.resolve(context)),
      },
    ],
    middlewareMergeStrategy: 'append',
  };
  return { core: kc.makeApiClient(CoreV1Api), batch: kc.makeApiClient(BatchV1Api), custom: kc.makeApiClient(CustomObjectsApi), options };
}

/** The HTTP status of a failed call, or undefined for network errors and timeouts. */
export function statusOf(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/** client-node hands error bodies over as text: parse them so the Status message can be read. */
function parsedBody(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

/** Turn client-node's multi-line ApiException into the one-line ApiStatusError the rest of the code uses. */
export function apiError(method: string, what: string, err: unknown): KbrackupError {
  if (err instanceof ApiException) return new ApiStatusError(method, what, err.code, statusMessage(parsedBody(err.body)));
  if (err instanceof KbrackupError) return err;
  const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
  return new KbrackupError(`Kubernetes API ${method} ${what}: ${timedOut ? 'no answer in time' : describeError(err)}`, undefined, { cause: err });
}
