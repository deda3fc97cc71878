import { execFile } from 'node:child_process';

export interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run git in `cwd`; a missing git binary answers code 127. */
export function git(cwd: string, args: string[]): Promise<GitResult> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : (err as { code?: unknown }).code === 'ENOENT' ? 127 : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export async function inGitRepo(cwd: string): Promise<boolean> {
  return (await git(cwd, ['rev-parse', '--git-dir'])).code === 0;
}

export async function remoteUrl(cwd: string, remote: string): Promise<string | undefined> {
  const res = await git(cwd, ['remote', 'get-url', remote]);
  return res.code === 0 ? res.stdout.trim() : undefined;
}

/** The repository's remotes: name → fetch URL (none outside a repository). */
export async function remotes(cwd: string): Promise<Map<string, string>> {
  const res = await git(cwd, ['config', '--local', '--get-regexp', '^remote\\..*\\.url$']);
  const found = new Map<string, string>();
  if (res.code !== 0) return found;
  for (const line of res.stdout.split('\n')) {
    const m = /^remote\.(.+)\.url (.*)$/.exec(line.trim());
    if (m) found.set(m[1] as string, m[2] as string);
  }
  return found;
}
