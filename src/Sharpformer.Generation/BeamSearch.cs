using Sharpformer.Models;

namespace Sharpformer.Generation;

/// <summary>
/// Beam search for one prompt with Hugging Face's BeamSearchScorer rules: the B beams (B = NumBeams) start as one
/// (the others at −1e9); each step takes the 2·B best (beam, token) pairs by cumulative log-probability; a stop token
/// among the first B candidates finishes a hypothesis scored sum(log p) / generated_length^LengthPenalty (the stop token
/// counted); the first B other candidates continue. Search ends when B hypotheses are finished and no running beam can
/// beat the worst of them (or at once with EarlyStopping), or after MaxNewTokens, when the running beams join the pool.
/// </summary>
internal static class BeamSearch
{
    public static GeneratedSequence Run(ICausalLM model, IReadOnlyList<int> prompt, GenerationOptions options, IReadOnlyList<int> stopIds, CancellationToken ct)
    {
        int beams = options.NumBeams, vocab = model.VocabSize, promptLength = prompt.Count;
        DecodingSession.CheckContext(model, [prompt], options);
        var stop = new HashSet<int>(stopIds);
        var cache = model.CreateCache(beams, promptLength + options.MaxNewTokens);
        var ids = new int[beams * promptLength];
        for (int b = 0; b < beams; b++)
        {
            for (int t = 0; t < promptLength; t++)
            {
                ids[b * promptLength + t] = prompt[t];
            }
        }

        var running = Enumerable.Range(0, beams).Select(_ => new List<int>(prompt)).ToList();
        var beamScores = new double[beams];
        for (int b = 1; b < beams; b++)
        {
            beamScores[b] = -1e9;
        }

        var finished = new Hypotheses(beams, options.LengthPenalty);
        var logits = new float[beams * vocab];
        bool done = false;
        bool cancelled = false;
        for (int step = 0; step < options.MaxNewTokens && !done; step++)
        {
            if (ct.IsCancellationRequested)
            {
                cancelled = true;
                break;
            }

            model.ForwardLast(step == 0 ? ids : [.. running.Select(r => r[^1])], default, cache, logits);
            int generatedLength = running[0].Count + 1 - promptLength;

            // Candidates: cumulative log-probabilities of every (beam, token), best first.
            var candidates = new List<(double Score, int Beam, int Token)>(beams * vocab);
            for (int b = 0; b < beams; b++)
            {
                var row = logits.AsSpan(b * vocab, vocab);
                LogSoftmax(row);
                LogitsProcessors.RepetitionPenalty(row, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(running[b]), options.RepetitionPenalty);
                for (int v = 0; v < vocab; v++)
                {
                    candidates.Add((beamScores[b] + row[v], b, v));
                }
            }

            // Best first; ties broken by flat index (beam·V + token) as torch.topk tends to on CPU.
            candidates.Sort((x, y) => x.Score != y.Score ? y.Score.CompareTo(x.Score) : (x.Beam * vocab + x.Token).CompareTo(y.Beam * vocab + y.Token));
            int keep = Math.Min(candidates.Count, Math.Max(2, 1 + stop.Count) * beams);
            var next = new List<(double Score, int Beam, int Token)>(beams);
            for (int rank = 0; rank < keep && next.Count < beams; rank++)
            {
                var c = candidates[rank];
                if (stop.Contains(c.Token))
                {
                    if (rank < beams)
                    {
                        finished.Add([.. running[c.Beam].Skip(promptLength), c.Token], c.Score, generatedLength);
                    }
                }
                else
                {
                    next.Add(c);
                }
            }

            done = finished.IsDone(candidates[0].Score, generatedLength, options.EarlyStopping);
            var sources = next.Select(n => n.Beam).ToArray();
            running = [.. next.Select(n => new List<int>(running[n.Beam]) { n.Token })];
            beamScores = [.. next.Select(n => n.Score)];
            if (!done && step + 1 < options.MaxNewTokens)
            {
                cache.Reorder(sources);
            }
        }

        if (!done)
        {
            for (int b = 0; b < running.Count; b++)
            {
                var tokens = running[b].Skip(promptLength).ToList();
                finished.Add(tokens, beamScores[b], tokens.Count);
            }
        }

        var best = finished.Best();
        var reason = cancelled ? FinishReason.Cancelled : best.Tokens.Count > 0 && stop.Contains(best.Tokens[^1]) ? FinishReason.StopToken : FinishReason.Length;
        return new GeneratedSequence(best.Tokens, reason, best.Score);
    }

    private static void LogSoftmax(Span<float> row)
    {
        float max = float.NegativeInfinity;
        foreach (float x in row)
        {
            max = Math.Max(max, x);
        }

        double sum = 0;
        foreach (float x in row)
        {
            sum += Math.Exp(x - max);
        }

        float logSum = max + (float)Math.Log(sum);
        for (int i = 0; i < row.Length; i++)
        {
            row[i] -= logSum;
        }
    }

    /// <summary>HF BeamHypotheses: the NumBeams best finished hypotheses and the worst score among them.</summary>
    private sealed class Hypotheses(int capacity, float lengthPenalty)
    {
        private readonly List<(double Score, List<int> Tokens)> _items = [];
        private double _worst = 1e9;

        public void Add(List<int> tokens, double sumLogProbs, int generatedLength)
        {
            double score = sumLogProbs / Math.Pow(generatedLength, lengthPenalty);
            if (_items.Count < capacity || score > _worst)
            {
                _items.Add((score, tokens));
                if (_items.Count > capacity)
                {
                    int worstIndex = 0;
                    for (int i = 1; i < _items.Count; i++)
                    {
                        if (_items[i].Score < _items[worstIndex].Score)
                        {
                            worstIndex = i;
                        }
                    }

                    _items.RemoveAt(worstIndex);
                    _worst = _items.Min(h => h.Score);
                }
                else
                {
                    _worst = Math.Min(score, _worst);
                }
            }
        }

        public bool IsDone(double bestRunningSum, int generatedLength, bool earlyStopping)
        {
            if (_items.Count < capacity)
            {
                return false;
            }

            return earlyStopping || _worst >= bestRunningSum / Math.Pow(generatedLength, lengthPenalty);
        }

        public (List<int> Tokens, double Score) Best()
        {
            var best = _items[0];
            foreach (var h in _items)
            {
                // The last of equal scores wins, as Python's stable sort followed by [-1].
                if (h.Score >= best.Score)
                {
                    best = h;
                }
            }

            return (best.Tokens, best.Score);
        }
    }
}
