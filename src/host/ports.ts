import { createServer } from 'node:net';
import { CapacityError, HostErrorCodes } from './errors.js';

/**
 * Hands out host ports from a range on one address. A port is given only if nothing else listens
 * on it (probed by binding), and is held until released.
 */
export class PortAllocator {
  private readonly used = new Set<number>();
  private next: number;

  constructor(
    private readonly addr: string,
    private readonly first: number,
    private readonly last: number,
  ) {
    this.next = first + Math.floor(Math.random() * (last - first + 1));
  }

  /** Mark ports as taken (jobs adopted after a restart). */
  reserve(ports: number[]): void {
    for (const p of ports) this.used.add(p);
  }

  release(ports: number[]): void {
    for (const p of ports) this.used.delete(p);
  }

  async allocate(count: number): Promise<number[]> {
    const got: number[] = [];
    const size = this.last - this.first + 1;
    for (let tried = 0; got.length < count && tried < size; tried++) {
      const port = this.next;
      this.next = port >= this.last ? this.first : port + 1;
      if (this.used.has(port)) continue;
      if (!(await free(this.addr, port))) continue;
      this.used.add(port);
      got.push(port);
    }
    if (got.length < count) {
      this.release(got);
      throw new CapacityError(HostErrorCodes.NO_PORTS, `no free host port left in ${this.first}-${this.last} on ${this.addr}`);
    }
    return got;
  }
}

function free(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
