import type { Registration } from './discovery.js';
import { InstanceNotFoundError } from './errors.js';
import type { Instance } from './types.js';
import { validateMeta } from './validate.js';

/** What a backend supplies for the {@link Registration} it hands out. */
export interface RegistrationParts {
  /** The instance as it stands now. */
  instance(): Instance;
  lost: Promise<Error>;
  /** Whether it was unregistered. */
  done(): boolean;
  /** Store validated meta for the instance. */
  putMeta(meta: Record<string, string>): Promise<void>;
  /** Idempotent. */
  unregister(): Promise<void>;
}

/**
 * The handle every backend returns: `setMeta` validates the meta and refuses once unregistered,
 * and `close()` and disposal are `unregister()`.
 */
export function registrationHandle(parts: RegistrationParts): Registration {
  const { unregister } = parts;
  return {
    get instance() {
      return parts.instance();
    },
    lost: parts.lost,
    setMeta: async (meta) => {
      if (parts.done()) throw new InstanceNotFoundError(parts.instance().id);
      await parts.putMeta(validateMeta(meta));
    },
    unregister,
    close: unregister,
    [Symbol.asyncDispose]: unregister,
  };
}
