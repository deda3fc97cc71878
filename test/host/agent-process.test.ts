import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import { describeAgentScenarios } from './agent-scenarios.js';

const run = randomUUID().slice(0, 6);
const baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-agent-'));
afterAll(() => rm(baseDir, { recursive: true, force: true }));

describeAgentScenarios('process', () => new ProcessRuntime({ baseDir }), run);
