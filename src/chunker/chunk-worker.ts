import { parentPort, type MessagePort } from 'node:worker_threads';
import type { ChunkRequest } from './chunk-protocol.js';
import { ChunkingService } from './chunking.js';

// Entry of the chunk thread (chunk-thread.ts).
const port = parentPort as MessagePort;
const service = new ChunkingService();
port.on('message', (m: ChunkRequest) => service.handle(m, (reply, transfer) => port.postMessage(reply, transfer)));
