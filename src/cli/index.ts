/**
 * The `flynn` CLI as a library: {@link runCli} runs one command line against any {@link CliIo}.
 * @module
 */
export { runCli, COMMANDS } from './cli.js';
export type { CliIo, Command, GlobalFlags } from './context.js';
export { CliError, CliErrorCodes } from './errors.js';
export { configPath, readConfig, writeConfig, pickCluster, gitUrl, appFromGitUrl } from './config.js';
export type { ClusterConfig, FlynnRc } from './config.js';
export { formatTable } from './table.js';
export { certPin } from '../common/tls/pin.js';
