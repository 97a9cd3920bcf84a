import { describe, expect, it } from 'vitest';
import { hdr, meanAndStddev, newHistogram, percentilesOf, recordUs } from '../../src/load/histogram.js';

/** A small deterministic generator: the same histograms every run. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('meanAndStddev', () => {
  it('gives the package\'s own mean and stdDeviation, to the last bit', () => {
    const random = generator(16);
    for (let round = 0; round < 60; round++) {
      const histogram = newHistogram();
      const values = 1 + Math.floor(random() * 2000);
      // Latencies over many magnitudes: 1 µs to past the 60 s ceiling (clamped), some repeated.
      for (let i = 0; i < values; i++) recordUs(histogram, Math.exp(random() * 18.5));
      const { mean, stddev } = meanAndStddev(histogram);
      expect(mean).toBe(histogram.mean);
      expect(stddev).toBe(histogram.stdDeviation);
    }
  });

  it('reads a histogram decoded from a log (the report merge) the same way', () => {
    const histogram = newHistogram();
    for (const us of [1, 2, 3, 900, 1500, 1501, 2_000_000, 59_999_999]) recordUs(histogram, us);
    const decoded = hdr.decodeFromCompressedBase64(hdr.encodeIntoCompressedBase64(histogram), 32, false);
    expect(meanAndStddev(decoded)).toEqual({ mean: histogram.mean, stddev: histogram.stdDeviation });
  });

  it('is 0 and 0 for an empty histogram, as percentilesOf prints it', () => {
    expect(meanAndStddev(newHistogram())).toEqual({ mean: 0, stddev: 0 });
    expect(percentilesOf(newHistogram())).toMatchObject({ mean: 0, stddev: 0 });
  });
});
