using Sharpformer.Models;

namespace Sharpformer.Generation;

/// <summary>
/// Beam search for one input with Hugging Face's BeamSearchScorer rules, for causal and encoder-decoder models alike:
/// the B beams (B = NumBeams) start as one (the others at −1e9); each step takes the 2·B best (beam, token) pairs by
/// cumulative log-probability (log-softmax, then the logits processors, then + the beam's score); a stop token among
/// the first B candidates finishes a hypothesis scored sum(log p) / generated_length^LengthPenalty (the stop token
/// counted); the first B other candidates continue. Search ends when B hypotheses are finished and no running beam can
/// beat the worst of them (or at once with EarlyStopping), or after MaxNewTokens, when the running beams join the pool;
/// the NumReturnSequences best hypotheses come back, best first.
/// </summary>
internal static class BeamSearch
{
    /// <summary>Fills logits [B, V] for the running beams; step 0 is the first call (a causal model's prefill).</summary>
    /// <param name="step">The step, from 0.</param>
    /// <param name="lastTokens">[B] each beam's last token (step 0: the end of the start sequence).</param>
    /// <param name="logits">[B, V] to fill.</param>
    public delegate void Forward(int step, ReadOnlySpan<int> lastTokens, Span<float> logits);

    /// <summary>Runs the logits processors on one beam's log-probabilities.</summary>
    /// <param name="scores">[V] log-probabilities, changed in place.</param>
    /// <param name="sequence">The beam's tokens so far (the start sequence included).</param>
    /// <param name="generated">Tokens generated so far.</param>
    public delegate void Process(Span<float> scores, ReadOnlySpan<int> sequence, int generated);

    /// <summary>Beam search over a causal model: the prompt is prefilled into B cache rows, then one token per beam per step.</summary>
    public static GeneratedSequence Run(ICausalLM model, IReadOnlyList<int> prompt, GenerationOptions options, IReadOnlyList<int> stopIds, CancellationToken ct)
    {
        int beams = options.NumBeams, promptLength = prompt.Count;
        DecodingSession.CheckContext(model, [prompt], options);
        var cache = model.CreateCache(beams, promptLength + options.MaxNewTokens);
        var ids = new int[beams * promptLength];
        for (int b = 0; b < beams; b++)
        {
            for (int t = 0; t < promptLength; t++)
            {
                ids[b * promptLength + t] = prompt[t];
            }
        }

        return Search(
            model.VocabSize,
            prompt,
            options,
            stopIds,
            (step, last, logits) => model.ForwardLast(step == 0 ? ids : last, default, cache, logits),
            sources => cache.Reorder(sources),
            (scores, sequence, generated) =>
            {
                LogitsProcessors.RepetitionPenalty(scores, sequence, options.RepetitionPenalty);
                LogitsProcessors.NoRepeatNgram(scores, sequence, options.NoRepeatNgramSize);
                LogitsProcessors.MinNewTokens(scores, generated, options.MinNewTokens, stopIds);
            },
            ct)[0];
    }

    /// <summary>
    /// The search itself: <paramref name="start"/> is each beam's start sequence (a causal prompt, or an
    /// encoder-decoder's decoder start token), excluded from the returned tokens.
    /// </summary>
    public static IReadOnlyList<GeneratedSequence> Search(int vocab, IReadOnlyList<int> start, GenerationOptions options, IReadOnlyList<int> stopIds,
        Forward forward, Action<int[]> reorder, Process process, CancellationToken ct)
    {
        int beams = options.NumBeams, startLength = start.Count;
        var stop = new HashSet<int>(stopIds);
        var running = Enumerable.Range(0, beams).Select(_ => new List<int>(start)).ToList();
        var beamScores = new double[beams];
        for (int b = 1; b < beams; b++)
        {
            beamScores[b] = -1e9;
        }

        var finished = new Hypotheses(beams, options.LengthPenalty);
        var logits = new float[beams * vocab];
        var last = new int[beams];
        bool done = false;
        bool cancelled = false;
        for (int step = 0; step < options.MaxNewTokens && !done; step++)
        {
            if (ct.IsCancellationRequested)
            {
                cancelled = true;
                break;
            }

            for (int b = 0; b < beams; b++)
            {
                last[b] = running[b][^1];
            }

            forward(step, last, logits);
            int generatedLength = running[0].Count + 1 - startLength;

            // Candidates: cumulative log-probabilities of every (beam, token), best first.
            var candidates = new List<(double Score, int Beam, int Token)>(beams * vocab);
            for (int b = 0; b < beams; b++)
            {
                var row = logits.AsSpan(b * vocab, vocab);
                LogSoftmax(row);
                process(row, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(running[b]), generatedLength - 1);
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
                        finished.Add([.. running[c.Beam].Skip(startLength), c.Token], c.Score, generatedLength);
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
                reorder(sources);
            }
        }

        if (!done)
        {
            for (int b = 0; b < running.Count; b++)
            {
                var tokens = running[b].Skip(startLength).ToList();
                finished.Add(tokens, beamScores[b], tokens.Count);
            }
        }

        return [.. finished.Best(options.NumReturnSequences).Select(best =>
        {
            var reason = cancelled ? FinishReason.Cancelled : best.Tokens.Count > 0 && stop.Contains(best.Tokens[^1]) ? FinishReason.StopToken : FinishReason.Length;
            return new GeneratedSequence(best.Tokens, reason, best.Score);
        })];
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

        /// <summary>The <paramref name="count"/> best, best first; of equal scores the later-added first (Python's stable sort, then pop()).</summary>
        public List<(List<int> Tokens, double Score)> Best(int count)
        {
            var ascending = _items.Select((h, i) => (h.Score, h.Tokens, Index: i)).OrderBy(h => h.Score).ThenBy(h => h.Index).ToList();
            var best = new List<(List<int> Tokens, double Score)>(count);
            for (int i = ascending.Count - 1; i >= 0 && best.Count < count; i--)
            {
                best.Add((ascending[i].Tokens, ascending[i].Score));
            }

            return best;
        }
    }
}
