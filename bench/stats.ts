/** Latency histogram (about 1 % resolution, any count of samples in constant memory) and clocks. */

/**
 * Microseconds on CLOCK_MONOTONIC. On Linux `process.hrtime` reads the system-wide monotonic
 * clock, so a time stamped in the server process and read in the load process compare directly.
 */
export function nowUs (): number {
  const [s, ns] = process.hrtime()
  return s * 1e6 + ns / 1e3
}

const STEPS_PER_E = 100 // bucket i holds values in [e^(i/100), e^((i+1)/100)) µs: ~1 % wide

export interface LatencySummary {
  count: number
  p50Ms: number
  p90Ms: number
  p99Ms: number
  maxMs: number
  meanMs: number
}

export class Histogram {
  private counts = new Float64Array(2200) // up to e^22 µs (~100 min)
  count = 0
  private sum = 0
  private max = 0

  record (us: number): void {
    const v = us < 1 ? 1 : us
    let i = Math.floor(Math.log(v) * STEPS_PER_E)
    if (i >= this.counts.length) i = this.counts.length - 1
    this.counts[i]++
    this.count++
    this.sum += v
    if (v > this.max) this.max = v
  }

  /** Value (µs) below which a fraction `q` of the samples lie: the bucket's upper edge, capped at the exact max. */
  quantile (q: number): number {
    if (this.count === 0) return 0
    const rank = Math.ceil(q * this.count)
    let seen = 0
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]
      if (seen >= rank) return Math.min(Math.exp((i + 1) / STEPS_PER_E), this.max)
    }
    return this.max
  }

  summary (): LatencySummary {
    return {
      count: this.count,
      p50Ms: this.quantile(0.5) / 1e3,
      p90Ms: this.quantile(0.9) / 1e3,
      p99Ms: this.quantile(0.99) / 1e3,
      maxMs: this.max / 1e3,
      meanMs: this.count === 0 ? 0 : this.sum / this.count / 1e3
    }
  }

  reset (): void {
    this.counts.fill(0)
    this.count = 0
    this.sum = 0
    this.max = 0
  }
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
