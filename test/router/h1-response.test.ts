import { describe, expect, it } from 'vitest';
import { parseFields, startLine } from '../../src/router/h1-fields.js';
import { MAX_HEAD_BYTES, ResponseError, ResponseParser } from '../../src/router/h1-response.js';

interface Parsed {
  status?: number;
  headers?: string[];
  body: string;
  ends: boolean[];
  error?: string;
}

/** Parse `text` fed in pieces of `step` bytes (0: in one piece), `head` for a HEAD request. */
function parse(text: string | Buffer, step = 0, head = false, eof = false): Parsed {
  const out: Parsed = { body: '', ends: [] };
  const parser = new ResponseParser({
    onHead: (status, headers) => {
      out.status = status;
      out.headers = headers;
    },
    onBody: (chunk) => (out.body += chunk.toString('latin1')),
    onEnd: (reusable) => out.ends.push(reusable),
  });
  parser.expect(head);
  const buf = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  try {
    if (step === 0) parser.feed(buf);
    else for (let i = 0; i < buf.length; i += step) parser.feed(buf.subarray(i, i + step));
    if (eof) parser.eof();
  } catch (err) {
    if (!(err instanceof ResponseError)) throw err;
    out.error = err.message;
  }
  return out;
}

/** The same response parsed whole, byte by byte and in every two-piece split gives the same result. */
function parseEverySplit(text: string, head = false, eof = false): Parsed {
  const whole = parse(text, 0, head, eof);
  expect(parse(text, 1, head, eof)).toEqual(whole);
  for (let cut = 1; cut < text.length; cut++) {
    const out: Parsed = { body: '', ends: [] };
    const parser = new ResponseParser({
      onHead: (status, headers) => ((out.status = status), (out.headers = headers)),
      onBody: (chunk) => (out.body += chunk.toString('latin1')),
      onEnd: (reusable) => out.ends.push(reusable),
    });
    parser.expect(head);
    parser.feed(Buffer.from(text.slice(0, cut), 'latin1'));
    parser.feed(Buffer.from(text.slice(cut), 'latin1'));
    if (eof) parser.eof();
    expect(out, `split at ${cut}`).toEqual(whole);
  }
  return whole;
}

describe('the fast path response parser (RFC 9112 framing)', () => {
  it('reads a Content-Length body, split anywhere, and keeps the connection', () => {
    const r = parseEverySplit('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello');
    expect(r).toEqual({ status: 200, headers: ['Content-Type', 'text/plain', 'Content-Length', '5'], body: 'hello', ends: [true] });
  });

  it('reads a chunked body with extensions and trailers, split anywhere, and drops the trailers', () => {
    const r = parseEverySplit('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n1 \r\n,\r\nA\r\n world!!!!\r\n0\r\nX-Checksum: 1\r\n\r\n');
    expect(r).toMatchObject({ status: 200, body: 'hello, world!!!!', ends: [true] });
  });

  it('reads a body that runs to the connection end, and does not reuse the connection', () => {
    expect(parseEverySplit('HTTP/1.1 200 OK\r\n\r\nuntil close', false, true)).toMatchObject({ body: 'until close', ends: [false] });
    expect(parse('HTTP/1.1 200 OK\r\n\r\npart')).toMatchObject({ body: 'part', ends: [] });
  });

  it('has no body for HEAD, 204 and 304, whatever their framing headers say', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', 0, true)).toMatchObject({ status: 200, body: '', ends: [true] });
    expect(parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', 0, true)).toMatchObject({ body: '', ends: [true] });
    expect(parse('HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n')).toMatchObject({ status: 204, ends: [true] });
    expect(parse('HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n')).toMatchObject({ status: 304, ends: [true] });
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')).toMatchObject({ body: '', ends: [true] });
  });

  it('skips interim 1xx heads and refuses a 101 to a request that asked for no upgrade', () => {
    expect(parseEverySplit('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')).toMatchObject({ status: 200, body: 'ok', ends: [true] });
    expect(parse('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n').error).toMatch(/101/);
  });

  it('does not reuse a connection the backend closes, nor an HTTP/1.0 one', () => {
    expect(parse('HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n').ends).toEqual([false]);
    expect(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').ends).toEqual([false]);
  });

  it('reads the keep-alive hint', () => {
    const parser = new ResponseParser({ onHead: () => {}, onBody: () => {}, onEnd: () => {} });
    parser.expect(false);
    parser.feed(Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n'));
    expect(parser.keepAliveMs).toBe(5000);
  });

  it('accepts repeated equal Content-Length values and refuses differing or malformed ones', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok')).toMatchObject({ body: 'ok', ends: [true] });
    for (const bad of ['2, 3', '+2', '-1', '0x2', '2 2', '', '1e3', '9999999999999999']) {
      expect(parse(`HTTP/1.1 200 OK\r\nContent-Length: ${bad}\r\n\r\nok`).error, bad).toBeDefined();
    }
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok').error).toMatch(/conflicting/);
  });

  it('refuses the framing a smuggler would use: TE with CL, codings other than chunked, chunked twice', () => {
    const heads = [
      'Transfer-Encoding: chunked\r\nContent-Length: 5',
      'Content-Length: 5\r\nTransfer-Encoding: chunked',
      'Transfer-Encoding: gzip, chunked',
      'Transfer-Encoding: chunked, identity',
      'Transfer-Encoding: identity',
      'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked',
      'Transfer-Encoding: xchunked',
      'Transfer-Encoding : chunked',
      'Transfer-Encoding:\tchunked\x0b',
    ];
    for (const h of heads) expect(parse(`HTTP/1.1 200 OK\r\n${h}\r\n\r\n0\r\n\r\n`).error, h).toBeDefined();
  });

  it('refuses malformed heads', () => {
    const heads = [
      'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n', // bare LF
      'HTTP/1.1 200 OK\r\nA: b\rc\r\nContent-Length: 0\r\n\r\n', // bare CR
      'HTTP/1.1 200 OK\r\nA: b\r\n folded\r\nContent-Length: 0\r\n\r\n', // obs-fold
      'HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\n: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n',
      'HTTP/1.1 200 OK\r\nA: \x00\r\n\r\n',
      'HTTP/2 200 OK\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'HTTP/1.1 2000 OK\r\n\r\n',
      'HTTP/1.1 600 Nope\r\n\r\n',
      'HTTP/1.1 099 Nope\r\n\r\n',
      'http/1.1 200 OK\r\n\r\n',
      'HTTP/1.1  200 OK\r\n\r\n',
      'ICY 200 OK\r\n\r\n',
    ];
    for (const h of heads) expect(parse(h, 0, false, true).error, JSON.stringify(h)).toBeDefined();
  });

  it('refuses malformed chunks', () => {
    const bodies = ['zz\r\n', '-1\r\nx\r\n', ' 5\r\nhello\r\n', '0000000000000005\r\nhello\r\n', '5\r\nhelloXX', '5\nhello\r\n', '5\r\nhello\r\n0\r\nbad trailer\r\n\r\n', '5;a\x01\r\nhello\r\n'];
    for (const b of bodies) expect(parse(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${b}`).error, JSON.stringify(b)).toBeDefined();
  });

  it('gives one request one response: bytes after it make the connection unusable and are never parsed as an answer', () => {
    const smuggled = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil';
    const r = parse(smuggled);
    expect(r).toMatchObject({ status: 200, body: 'ok', ends: [false] });
    expect(r.error).toMatch(/no request outstanding/);
    // Split after the first response: it ends reusable, then the rest is refused.
    const parser = new ResponseParser({ onHead: () => {}, onBody: () => {}, onEnd: () => {} });
    parser.expect(false);
    parser.feed(Buffer.from(smuggled.slice(0, 40)));
    expect(() => parser.feed(Buffer.from(smuggled.slice(40)))).toThrow(ResponseError);
    // A HEAD response followed by a body is the same attempt.
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil', 0, true)).toMatchObject({ ends: [false] });
  });

  it('refuses a response cut short by the connection end', () => {
    expect(parse('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello', 0, false, true).error).toMatch(/before the response ended/);
    expect(parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', 0, false, true).error).toMatch(/before the response ended/);
    expect(parse('HTTP/1.1 200 OK\r\nContent-Le', 0, false, true).error).toMatch(/before the response ended/);
  });

  it('limits the head and chunk-size lines', () => {
    const big = `HTTP/1.1 200 OK\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`;
    expect(parse(big).error).toMatch(/longer than/);
    expect(parse(big, 1000).error).toMatch(/longer than/);
    expect(parse(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;${'x'.repeat(5000)}`, 100).error).toMatch(/longer than/);
  });

  it('passes header values through byte for byte (obs-text included), trimmed of surrounding whitespace', () => {
    const r = parse('HTTP/1.1 200 OK\r\nX-Latin: \t caf\xe9 \t\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n');
    expect(r.headers).toEqual(['X-Latin', 'caf\xe9', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '0']);
  });

  it('scans field lines strictly, as the request side uses them too', () => {
    const out: string[] = [];
    expect(parseFields('A: 1\r\nB-c:\t two words \r\nD:\r\nE: \xe9', 0, out)).toBe(true);
    expect(out).toEqual(['A', '1', 'B-c', 'two words', 'D', '', 'E', '\xe9']);
    for (const bad of [' A: 1', 'A : 1', 'A', ':1', 'A: 1\nB: 2', 'A: 1\r', 'A: \x7f', 'A\x80: 1', 'A: 1\r\n\r\nB: 2', 'A: a\x00b', 'A: 1\r\n folded']) {
      expect(parseFields(bad, 0, []), JSON.stringify(bad)).toBe(false);
    }
    expect(startLine('GET / HTTP/1.1')).toEqual({ line: 'GET / HTTP/1.1', fields: 14 });
    expect(startLine('GET / HTTP/1.1\r\nA: 1')).toEqual({ line: 'GET / HTTP/1.1', fields: 16 });
  });
});
