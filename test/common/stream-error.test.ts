import { describe, expect, it } from 'vitest';
import { FlynnError, NotFoundError, UnavailableError } from '../../src/common/errors.js';
import { errorFromStream, streamError } from '../../src/common/http/stream-error.js';

describe('errors in the middle of a stream', () => {
  it('come back as the class the server threw, with its code, detail and retryable flag', () => {
    const sent = JSON.stringify(streamError(new NotFoundError('FLYNN_ERR_X_GONE', 'job j1 is gone', { detail: { job: 'j1' } })));
    const back = errorFromStream(sent);
    expect(back).toBeInstanceOf(NotFoundError);
    expect(back).toMatchObject({ code: 'FLYNN_ERR_X_GONE', message: 'job j1 is gone', detail: { job: 'j1' }, retryable: false });
    expect(errorFromStream(streamError(new UnavailableError('FLYNN_ERR_X_DOWN', 'etcd is down')))).toBeInstanceOf(UnavailableError);
  });

  it('an error that is no FlynnError arrives as an internal FlynnError with its message', () => {
    const back = errorFromStream(JSON.stringify(streamError(new Error('disk full'))));
    expect(back).toBeInstanceOf(FlynnError);
    expect(back).toMatchObject({ code: 'FLYNN_ERR_INTERNAL', kind: 'internal', message: 'disk full' });
  });

  it('keeps the message of an older server that sent only { message }, or of text that is not JSON', () => {
    expect(errorFromStream('{"message":"boom"}')).toMatchObject({ code: 'FLYNN_ERR_STREAM', message: 'boom' });
    expect(errorFromStream('not json')).toMatchObject({ code: 'FLYNN_ERR_STREAM', message: 'not json' });
  });
});
