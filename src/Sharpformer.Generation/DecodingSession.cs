using Sharpformer.Models;

namespace Sharpformer.Generation;

/// <summary>
/// Greedy or sampled decoding of B left-padded prompts, one token per sequence per <see cref="Step"/>, over one
/// preallocated KV cache. Finished sequences are fed a pad token (as HF does) until every sequence is done.
/// </summary>
internal sealed class DecodingSession
{
    private readonly ICausalLM _model;
    private readonly GenerationOptions _options;
    private readonly HashSet<int> _stopIds;
    private readonly int _padId;
    private readonly KvCache _cache;
    private readonly List<int>[] _history; // prompt (real tokens) + generated, per sequence, for the repetition penalty
    private readonly List<int>[] _generated;
    private readonly FinishReason?[] _finished;
    private readonly float[] _logits;
    private readonly int[] _stepIds;
    private readonly TokenSampler _sampler;
    private int[]? _prefillIds;
    private float[]? _prefillMask;

    public DecodingSession(ICausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, IReadOnlyList<int> stopIds, int padId)
    {
        _model = model;
        _options = options;
        _stopIds = [.. stopIds];
        _padId = padId;
        int batch = prompts.Count;
        int length = CheckContext(model, prompts, options);
        _cache = model.CreateCache(batch, length + options.MaxNewTokens);
        _prefillIds = new int[batch * length];
        _prefillMask = new float[batch * length];
        _history = new List<int>[batch];
        _generated = new List<int>[batch];
        for (int b = 0; b < batch; b++)
        {
            var prompt = prompts[b];
            int pad = length - prompt.Count;
            for (int t = 0; t < length; t++)
            {
                _prefillIds[b * length + t] = t < pad ? padId : prompt[t - pad];
                _prefillMask[b * length + t] = t < pad ? 0f : 1f;
            }

            _history[b] = [.. prompt];
            _generated[b] = [];
        }

        _finished = new FinishReason?[batch];
        _logits = new float[batch * model.VocabSize];
        _stepIds = new int[batch];
        _sampler = new TokenSampler(options.Seed);
    }

    public int Batch => _generated.Length;

    public IReadOnlyList<int> Generated(int sequence) => _generated[sequence];

    public FinishReason? Finished(int sequence) => _finished[sequence];

    public bool AllFinished => _finished.All(f => f is not null);

    /// <summary>Marks a sequence done (a stop sequence matched, or cancellation).</summary>
    public void Finish(int sequence, FinishReason reason) => _finished[sequence] ??= reason;

    /// <summary>Checks that the longest prompt plus MaxNewTokens fits the context; returns the padded prompt length.</summary>
    internal static int CheckContext(ICausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options)
    {
        if (prompts.Count == 0)
        {
            throw new ArgumentException("Generation needs at least one prompt.", nameof(prompts));
        }

        int length = prompts.Max(p => p.Count);
        if (prompts.Any(p => p.Count == 0))
        {
            throw new ArgumentException("A prompt has no tokens; generation needs at least one token to start from (e.g. the BOS/EOS token).", nameof(prompts));
        }

        if (length > model.MaxPositions)
        {
            throw new ArgumentException(
                $"The prompt is {length} tokens but the model's context is {model.MaxPositions} (n_positions): it is {length - model.MaxPositions} tokens too long. Shorten the prompt (e.g. keep its last {model.MaxPositions - 1} tokens).");
        }

        if (length + options.MaxNewTokens > model.MaxPositions)
        {
            throw new ArgumentException(
                $"The prompt ({length} tokens) plus MaxNewTokens ({options.MaxNewTokens}) = {length + options.MaxNewTokens} exceeds the model's context of {model.MaxPositions} tokens; set MaxNewTokens to at most {model.MaxPositions - length} or shorten the prompt.");
        }

        return length;
    }

    /// <summary>Generates one token for every unfinished sequence; false once every sequence is finished.</summary>
    public bool Step()
    {
        if (AllFinished)
        {
            return false;
        }

        int vocab = _model.VocabSize;
        if (_prefillIds is not null)
        {
            _model.ForwardLast(_prefillIds, _prefillMask, _cache, _logits);
            _prefillIds = null;
            _prefillMask = null;
        }
        else
        {
            _model.ForwardLast(_stepIds, default, _cache, _logits);
        }

        for (int b = 0; b < Batch; b++)
        {
            if (_finished[b] is not null)
            {
                _stepIds[b] = _padId;
                continue;
            }

            var row = _logits.AsSpan(b * vocab, vocab);
            LogitsProcessors.Apply(row, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_history[b]), _options, _generated[b].Count, _stopIds);
            int token = _options.DoSample ? _sampler.Sample(row) : TokenSampler.ArgMax(row);
            _history[b].Add(token);
            _generated[b].Add(token);
            _stepIds[b] = token;
            if (_stopIds.Contains(token))
            {
                _finished[b] = FinishReason.StopToken;
            }
            else if (_generated[b].Count >= _options.MaxNewTokens)
            {
                _finished[b] = FinishReason.Length;
            }
        }

        return true;
    }
}
