import type { CoreV1Event, V1ObjectReference } from '@kubernetes/client-node';
import { describeReport, type RunReport } from '../observe/report.js';
import type { ApiServer } from './apiserver.js';
import type { PodIdentity } from './cluster.js';

/** The moments a run reports: its start and its three possible ends. */
export type EventKind = 'started' | 'succeeded' | 'partial' | 'failed';

/** What the run is, for reasons (BackupStarted, RestoreFailed, PruneSucceeded…) and messages. */
export type Operation = 'backup' | 'restore' | 'forget' | 'prune' | 'check';

/** Words that say which run an Event is about. */
export interface EventContext {
  operation: Operation;
  source: string | undefined;
  repository: string;
}

const REASON: Record<EventKind, string> = { started: 'Started', succeeded: 'Succeeded', partial: 'Partial', failed: 'Failed' };
// Events longer than this are rejected by events.k8s.io validation; keep core/v1 ones as short.
const MAX_MESSAGE = 1024;

/** The object Events attach to: the Job (kubectl describe job shows them), else the Pod. */
export function involvedObject(identity: PodIdentity, namespace: string): V1ObjectReference | undefined {
  if (identity.jobName) return { apiVersion: 'batch/v1', kind: 'Job', name: identity.jobName, namespace, uid: identity.jobUid };
  if (identity.podName) return { apiVersion: 'v1', kind: 'Pod', name: identity.podName, namespace, uid: identity.podUid };
  return undefined;
}

/** The core/v1 Event for one moment of a run. */
export function buildEvent(kind: EventKind, context: EventContext, target: V1ObjectReference, identity: PodIdentity, report?: RunReport, now = new Date()): CoreV1Event {
  const op = context.operation[0]!.toUpperCase() + context.operation.slice(1);
  const direction = context.operation === 'backup' ? 'to ' : context.operation === 'restore' ? 'from ' : '';
  const what = `${op} of ${context.source ? `source ${context.source} ` : ''}${direction}${context.repository}`;
  const message = kind === 'started' ? `${what} started` : `${what} ${kind}${report ? `: ${describeReport(report)}` : ''}`;
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { generateName: `${target.name}.`, namespace: target.namespace },
    involvedObject: target,
    reason: `${op}${REASON[kind]}`,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message,
    type: kind === 'started' || kind === 'succeeded' ? 'Normal' : 'Warning',
    source: { component: 'kbrackup' },
    reportingComponent: 'kbrackup',
    reportingInstance: identity.podName ?? identity.holder,
    action: op,
    count: 1,
    firstTimestamp: now,
    lastTimestamp: now,
  };
}

/** Create the Event; errors are the caller's to judge (403 means no RBAC). */
export async function recordEvent(api: ApiServer, event: CoreV1Event): Promise<void> {
  await api.call('POST', `/api/v1/namespaces/${encodeURIComponent(api.namespace)}/events`, event);
}
