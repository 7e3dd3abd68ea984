/** 5 binomial standard deviations of a frequency p estimated from n draws: the tolerance of the frequency tests. */
export const tolerance = (p: number, n: number): number => 5 * Math.sqrt((p * (1 - p)) / n);

/** Exact inclusion probabilities of successive weighted sampling, by enumerating draw orders. */
export function inclusion(weights: number[], gamma: number): number[] {
  const pi = new Array(weights.length).fill(0);
  const walk = (w: number[], k: number, prob: number, chosen: number[]) => {
    if (k === 0) {
      for (const i of chosen) pi[i] += prob;
      return;
    }
    const total = w.reduce((a, b) => a + b, 0);
    w.forEach((x, i) => {
      if (x === 0) return;
      const rest = [...w];
      rest[i] = 0;
      walk(rest, k - 1, (prob * x) / total, [...chosen, i]);
    });
  };
  walk(weights, gamma, 1, []);
  return pi;
}
