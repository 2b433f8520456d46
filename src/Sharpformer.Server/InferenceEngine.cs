using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Sharpformer.Generation;
using Sharpformer.Models;

namespace Sharpformer.Server;

/// <summary>Why a sequence stopped.</summary>
public enum EngineFinish
{
    /// <summary>It produced a stop token, or its reader asked it to stop (a stop sequence appeared).</summary>
    Stop,

    /// <summary>It reached its token budget.</summary>
    Length,

    /// <summary>Its per-request deadline passed.</summary>
    Deadline,

    /// <summary>The client went away or the server shut down.</summary>
    Cancelled,

    /// <summary>The model rejected the step (e.g. a token id outside its vocabulary); the message is in <see cref="InferenceEngine.LastError"/>.</summary>
    Error,
}

/// <summary>What <see cref="InferenceEngine.Enqueue"/> did with a request.</summary>
public enum EnqueueResult
{
    /// <summary>It waits for a slot.</summary>
    Queued,

    /// <summary>Refused: <see cref="InferenceEngine.MaxQueue"/> requests are already waiting (answer 429).</summary>
    QueueFull,

    /// <summary>Refused: the engine is stopping (answer 503).</summary>
    ShuttingDown,
}

/// <summary>One alternative the model considered at a step, with its log-probability.</summary>
/// <param name="Token">The token id.</param>
/// <param name="Logprob">log p(token) under the model's distribution (before temperature or top-p).</param>
public readonly record struct TokenLogprob(int Token, float Logprob);

/// <summary>What the engine reports for one sequence: a token (with its log-probability and, when asked, the top alternatives), or the end.</summary>
/// <param name="Token">The generated token id (−1 on the final event).</param>
/// <param name="Logprob">log p(token) under the model's distribution.</param>
/// <param name="TopLogprobs">The most likely tokens at this step, when the request asked for them; else null.</param>
/// <param name="Finish">Set on the final event only.</param>
/// <param name="Timestamp">When the engine produced it (<see cref="Stopwatch.GetTimestamp"/>), for latency measurements.</param>
public readonly record struct EngineEvent(int Token, float Logprob, TokenLogprob[]? TopLogprobs, EngineFinish? Finish, long Timestamp);

/// <summary>A generation request for the engine: token ids in, a stream of <see cref="EngineEvent"/> out.</summary>
public sealed class EngineRequest
{
    private readonly Channel<EngineEvent> _events = Channel.CreateUnbounded<EngineEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private volatile bool _stopRequested;

    /// <summary>Creates a request.</summary>
    /// <param name="prompt">The prompt's token ids (at least one).</param>
    /// <param name="options">Sampling and length: MaxNewTokens, DoSample, Temperature, TopK, TopP, Seed (beam search is not served).</param>
    /// <param name="stopTokenIds">Token ids that end the sequence (e.g. EOS).</param>
    /// <param name="topLogprobs">How many alternatives to report per step: −1 for no log-probabilities at all, 0 for the chosen token's only.</param>
    /// <param name="deadline">When the engine gives up on it (UTC); null for none.</param>
    /// <param name="cancellation">Cancelled when the client goes away.</param>
    public EngineRequest(IReadOnlyList<int> prompt, GenerationOptions options, IReadOnlyList<int> stopTokenIds, int topLogprobs = -1, DateTime? deadline = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(stopTokenIds);
        if (prompt.Count == 0)
        {
            throw new ArgumentException("EngineRequest: the prompt has no tokens; pass at least one token id.", nameof(prompt));
        }

        Prompt = prompt;
        Options = options;
        StopTokenIds = stopTokenIds;
        TopLogprobs = topLogprobs;
        Deadline = deadline;
        Cancellation = cancellation;
    }

    /// <summary>The prompt's token ids.</summary>
    public IReadOnlyList<int> Prompt { get; }

    /// <summary>Sampling and length options.</summary>
    public GenerationOptions Options { get; }

    /// <summary>Token ids that end the sequence.</summary>
    public IReadOnlyList<int> StopTokenIds { get; }

    /// <summary>Alternatives per step (−1: no log-probabilities).</summary>
    public int TopLogprobs { get; }

    /// <summary>When the engine gives up (UTC), or null.</summary>
    public DateTime? Deadline { get; }

    /// <summary>Cancelled when the client goes away.</summary>
    public CancellationToken Cancellation { get; }

    /// <summary>The events, ending with one whose <see cref="EngineEvent.Finish"/> is set; then the channel completes.</summary>
    public ChannelReader<EngineEvent> Events => _events.Reader;

    /// <summary>When the request was queued (for time to first token).</summary>
    internal long EnqueuedTimestamp { get; set; }

    /// <summary>Asks the engine to end the sequence with <see cref="EngineFinish.Stop"/> before its next step (a stop sequence appeared in the text).</summary>
    public void RequestStop() => _stopRequested = true;

    internal bool StopRequested => _stopRequested;

    internal void Emit(EngineEvent e) => _events.Writer.TryWrite(e);

    internal void Complete(EngineFinish finish)
    {
        _events.Writer.TryWrite(new EngineEvent(-1, 0f, null, finish, Stopwatch.GetTimestamp()));
        _events.Writer.TryComplete();
    }
}

/// <summary>Counters the engine keeps (read by /metrics and by tests).</summary>
public sealed class EngineStatistics
{
    private long _steps;
    private long _stepSequences;
    private long _tokens;
    private int _maxSequencesPerStep;
    private long _prefills;

    /// <summary>Decode steps run.</summary>
    public long DecodeSteps => Interlocked.Read(ref _steps);

    /// <summary>Sum over decode steps of the sequences in each (divide by <see cref="DecodeSteps"/> for the mean batch).</summary>
    public long DecodeStepSequences => Interlocked.Read(ref _stepSequences);

    /// <summary>The most sequences one decode step has carried.</summary>
    public int MaxSequencesPerStep => Volatile.Read(ref _maxSequencesPerStep);

    /// <summary>Tokens generated (prefill and decode steps).</summary>
    public long GeneratedTokens => Interlocked.Read(ref _tokens);

    /// <summary>Prefill forwards run (one per group of newly admitted prompts of one length).</summary>
    public long Prefills => Interlocked.Read(ref _prefills);

    internal void AddStep(int sequences)
    {
        Interlocked.Increment(ref _steps);
        Interlocked.Add(ref _stepSequences, sequences);
        if (sequences > _maxSequencesPerStep)
        {
            Volatile.Write(ref _maxSequencesPerStep, sequences);
        }
    }

    internal void AddTokens(int count) => Interlocked.Add(ref _tokens, count);

    internal void AddPrefill() => Interlocked.Increment(ref _prefills);
}

/// <summary>
/// One inference loop for one model doing continuous batching: requests wait in a bounded queue; between decode steps
/// the loop admits as many as there are free cache slots (prefilling newcomers of equal prompt length together), then
/// runs one decode step for every active sequence at once (<see cref="ISlotCausalLM.ForwardSlots"/>: one GEMV/GEMM per
/// layer over all of them, each at its own position). A sequence leaves the batch — its slot freed for the next
/// request — when it stops, reaches its budget or deadline, or its client cancels; that takes effect before the next step.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    private readonly ISlotCausalLM _model;
    private readonly Channel<EngineRequest> _queue;
    private readonly KvCache _cache;
    private readonly Active?[] _slots;
    private readonly Thread _thread;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly Action<double>? _timeToFirstToken;
    private volatile bool _draining;
    private int _queued;
    private int _active;

    /// <summary>Starts the loop on its own thread.</summary>
    /// <param name="model">The model (used by this loop only: models are not thread-safe).</param>
    /// <param name="maxBatch">Cache slots: the most sequences decoded together.</param>
    /// <param name="maxQueue">The most requests waiting for a slot; more are refused (the server answers 429).</param>
    /// <param name="timeToFirstToken">Called with each request's seconds from queueing to its first token (metrics), or null.</param>
    /// <param name="context">
    /// Tokens per slot (prompt plus generated), at most the model's context; null: the model's context. The cache holds
    /// B × context keys and values per layer (GPT-2 124M, 16 slots × 1024: 1.2 GB), so a smaller context saves memory.
    /// </param>
    /// <exception cref="ArgumentOutOfRangeException">A size is not positive, or the context exceeds the model's.</exception>
    public InferenceEngine(ISlotCausalLM model, int maxBatch, int maxQueue, Action<double>? timeToFirstToken = null, int? context = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBatch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxQueue);
        _model = model;
        MaxBatch = maxBatch;
        MaxQueue = maxQueue;
        _queue = Channel.CreateUnbounded<EngineRequest>(new UnboundedChannelOptions { SingleReader = true });
        if (context is { } c && (c < 2 || c > model.MaxPositions))
        {
            throw new ArgumentOutOfRangeException(nameof(context), c, $"The serving context must be in [2, {model.MaxPositions}] (the model's n_positions).");
        }

        MaxPositions = context ?? model.MaxPositions;
        _cache = model.CreateCache(maxBatch, MaxPositions);
        _slots = new Active?[maxBatch];
        _timeToFirstToken = timeToFirstToken;
        _thread = new Thread(Loop) { IsBackground = true, Name = "sharpformer-engine" };
        _thread.Start();
    }

    /// <summary>The most sequences decoded together.</summary>
    public int MaxBatch { get; }

    /// <summary>The most requests waiting.</summary>
    public int MaxQueue { get; }

    /// <summary>Tokens per sequence (prompt plus generated): the model's context, or the smaller one the engine was made with.</summary>
    public int MaxPositions { get; }

    /// <summary>Requests waiting for a slot.</summary>
    public int QueueDepth => Volatile.Read(ref _queued);

    /// <summary>Sequences in the running batch.</summary>
    public int ActiveSequences => Volatile.Read(ref _active);

    /// <summary>Counters.</summary>
    public EngineStatistics Statistics { get; } = new();

    /// <summary>The message of the last step the model refused (sequences ended with <see cref="EngineFinish.Error"/>), or null.</summary>
    public string? LastError { get; private set; }

    /// <summary>
    /// Queues a request unless the queue is full or the engine is shutting down (then nothing was queued). Validate the
    /// prompt length against <see cref="MaxPositions"/> before: a request that does not fit ends at once with Length.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <returns>What happened.</returns>
    public EnqueueResult Enqueue(EngineRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_draining)
        {
            return EnqueueResult.ShuttingDown;
        }

        if (Interlocked.Increment(ref _queued) > MaxQueue)
        {
            Interlocked.Decrement(ref _queued);
            return EnqueueResult.QueueFull;
        }

        request.EnqueuedTimestamp = Stopwatch.GetTimestamp();
        _queue.Writer.TryWrite(request);
        _wake.Set();
        return EnqueueResult.Queued;
    }

    /// <summary>
    /// Graceful shutdown: refuses new requests, lets running and queued sequences finish for up to
    /// <paramref name="grace"/>, then cancels the rest (they end with <see cref="EngineFinish.Cancelled"/>) and stops the loop.
    /// </summary>
    /// <param name="grace">How long to let in-flight work finish.</param>
    /// <returns>A task that completes when the loop has stopped.</returns>
    public async Task StopAsync(TimeSpan grace)
    {
        _draining = true;
        var until = DateTime.UtcNow + grace;
        while ((QueueDepth > 0 || ActiveSequences > 0) && DateTime.UtcNow < until)
        {
            await Task.Delay(10).ConfigureAwait(false);
        }

        await _shutdown.CancelAsync().ConfigureAwait(false);
        _wake.Set();
        await Task.Run(() => _thread.Join()).ConfigureAwait(false);
    }

    /// <summary>Stops the loop at once (cancelling everything in flight).</summary>
    public void Dispose()
    {
        _draining = true;
        _shutdown.Cancel();
        _wake.Set();
        _thread.Join();
        _shutdown.Dispose();
        _wake.Dispose();
    }

    private void Loop()
    {
        var token = _shutdown.Token;
        var logits = new float[MaxBatch * _model.VocabSize];
        var stepSlots = new List<int>(MaxBatch);
        var stepIds = new List<int>(MaxBatch);
        while (!token.IsCancellationRequested)
        {
            try
            {
                Step(logits, stepSlots, stepIds);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                // A request the model refused: end every sequence of the failed step, keep serving the rest.
                LastError = e.Message;
                for (int s = 0; s < _slots.Length; s++)
                {
                    if (_slots[s] is not null)
                    {
                        Free(s, EngineFinish.Error);
                    }
                }
            }
        }

        // Shutting down: end everything still queued or running.
        for (int s = 0; s < _slots.Length; s++)
        {
            if (_slots[s] is not null)
            {
                Free(s, EngineFinish.Cancelled);
            }
        }

        while (_queue.Reader.TryRead(out var waiting))
        {
            Interlocked.Decrement(ref _queued);
            waiting.Complete(EngineFinish.Cancelled);
        }
    }

    /// <summary>One turn of the loop: retire, admit (prefill), then one batched decode step; waits when idle.</summary>
    private void Step(float[] logits, List<int> stepSlots, List<int> stepIds)
    {
        int vocab = _model.VocabSize;
        Retire();
        // Prefill before decode (as vLLM's scheduler does): requests that arrived while a prefill ran are admitted in
        // the same turn, so a burst is prefilled back to back instead of one decode step apart each.
        int admittedBefore;
        do
        {
            admittedBefore = ActiveSequences;
            Admit(logits);
        }
        while (QueueDepth > 0 && ActiveSequences > admittedBefore && ActiveSequences < _slots.Length);

        Retire();
        stepSlots.Clear();
        stepIds.Clear();
        for (int s = 0; s < _slots.Length; s++)
        {
            if (_slots[s] is { } a)
            {
                stepSlots.Add(s);
                stepIds.Add(a.Last);
            }
        }

        if (stepSlots.Count == 0)
        {
            _wake.Wait(100, CancellationToken.None);
            _wake.Reset();
            return;
        }

        _model.ForwardSlots(CollectionsMarshal.AsSpan(stepSlots), CollectionsMarshal.AsSpan(stepIds), _cache, logits);
        Statistics.AddStep(stepSlots.Count);
        for (int i = 0; i < stepSlots.Count; i++)
        {
            Next(stepSlots[i], logits.AsSpan(i * vocab, vocab));
        }
    }

    /// <summary>Takes queued requests into free slots; newcomers with prompts of equal length share one prefill forward.</summary>
    private void Admit(float[] logits)
    {
        if (QueueDepth == 0)
        {
            return;
        }

        var admitted = new List<(int Slot, EngineRequest Request)>();
        for (int s = 0; s < _slots.Length; s++)
        {
            if (_slots[s] is not null)
            {
                continue;
            }

            EngineRequest? request = null;
            while (_queue.Reader.TryRead(out var candidate))
            {
                Interlocked.Decrement(ref _queued);
                if (candidate.Cancellation.IsCancellationRequested)
                {
                    candidate.Complete(EngineFinish.Cancelled);
                    continue;
                }

                if (candidate.StopRequested)
                {
                    candidate.Complete(EngineFinish.Stop);
                    continue;
                }

                if (candidate.Deadline is { } deadline && DateTime.UtcNow >= deadline)
                {
                    candidate.Complete(EngineFinish.Deadline);
                    continue;
                }

                if (candidate.Prompt.Count + 1 > MaxPositions)
                {
                    candidate.Complete(EngineFinish.Length);
                    continue;
                }

                request = candidate;
                break;
            }

            if (request is null)
            {
                break;
            }

            admitted.Add((s, request));
        }

        int vocab = _model.VocabSize;
        foreach (var group in admitted.GroupBy(a => a.Request.Prompt.Count))
        {
            var slots = group.Select(a => a.Slot).ToArray();
            var ids = new int[slots.Length * group.Key];
            int row = 0;
            foreach (var (slot, request) in group)
            {
                _cache.ResetSequence(slot);
                for (int t = 0; t < group.Key; t++)
                {
                    ids[row * group.Key + t] = request.Prompt[t];
                }

                _slots[slot] = new Active(request);
                Interlocked.Increment(ref _active);
                row++;
            }

            _model.ForwardSlots(slots, ids, _cache, logits);
            Statistics.AddPrefill();
            for (int i = 0; i < slots.Length; i++)
            {
                var request = _slots[slots[i]]!.Request;
                _timeToFirstToken?.Invoke(Stopwatch.GetElapsedTime(request.EnqueuedTimestamp).TotalSeconds);
                Next(slots[i], logits.AsSpan(i * vocab, vocab));
            }
        }
    }

    /// <summary>Samples the next token of the sequence in <paramref name="slot"/> from its logits and reports it; frees the slot when the sequence is done.</summary>
    private void Next(int slot, Span<float> row)
    {
        var a = _slots[slot]!;
        var request = a.Request;
        float[]? logProbabilities = request.TopLogprobs >= 0 ? LogSoftmax(row) : null;
        LogitsProcessors.Apply(row, CollectionsMarshal.AsSpan(a.History), request.Options);
        int tokenId = request.Options.DoSample ? a.Sampler.Sample(row) : TokenSampler.ArgMax(row);
        a.History.Add(tokenId);
        a.Generated++;
        a.Last = tokenId;
        Statistics.AddTokens(1);
        var top = logProbabilities is not null && request.TopLogprobs > 0 ? Top(logProbabilities, request.TopLogprobs) : null;
        request.Emit(new EngineEvent(tokenId, logProbabilities?[tokenId] ?? 0f, top, null, Stopwatch.GetTimestamp()));
        if (request.StopTokenIds.Contains(tokenId))
        {
            Free(slot, EngineFinish.Stop);
        }
        else if (a.Generated >= request.Options.MaxNewTokens || _cache.SequenceLength(slot) + 1 > _cache.Capacity)
        {
            Free(slot, EngineFinish.Length);
        }
    }

    /// <summary>Ends sequences whose client left, whose reader asked to stop, or whose deadline passed: they leave before the next step.</summary>
    private void Retire()
    {
        var now = DateTime.UtcNow;
        for (int s = 0; s < _slots.Length; s++)
        {
            if (_slots[s] is not { } a)
            {
                continue;
            }

            if (a.Request.Cancellation.IsCancellationRequested)
            {
                Free(s, EngineFinish.Cancelled);
            }
            else if (a.Request.StopRequested)
            {
                Free(s, EngineFinish.Stop);
            }
            else if (a.Request.Deadline is { } deadline && now >= deadline)
            {
                Free(s, EngineFinish.Deadline);
            }
        }
    }

    private void Free(int slot, EngineFinish finish)
    {
        var a = _slots[slot]!;
        _slots[slot] = null;
        _cache.ResetSequence(slot);
        Interlocked.Decrement(ref _active);
        a.Request.Complete(finish);
    }

    private static float[] LogSoftmax(ReadOnlySpan<float> row)
    {
        float max = float.NegativeInfinity;
        foreach (float v in row)
        {
            max = Math.Max(max, v);
        }

        double sum = 0;
        foreach (float v in row)
        {
            sum += Math.Exp(v - max);
        }

        float logSum = max + (float)Math.Log(sum);
        var result = new float[row.Length];
        for (int i = 0; i < row.Length; i++)
        {
            result[i] = row[i] - logSum;
        }

        return result;
    }

    /// <summary>The <paramref name="count"/> most likely tokens, best first (ties by lower id).</summary>
    private static TokenLogprob[] Top(float[] logProbabilities, int count)
    {
        count = Math.Min(count, logProbabilities.Length);
        var best = new List<TokenLogprob>(count + 1);
        for (int i = 0; i < logProbabilities.Length; i++)
        {
            float v = logProbabilities[i];
            if (best.Count == count && v <= best[^1].Logprob)
            {
                continue;
            }

            int at = best.Count;
            while (at > 0 && best[at - 1].Logprob < v)
            {
                at--;
            }

            best.Insert(at, new TokenLogprob(i, v));
            if (best.Count > count)
            {
                best.RemoveAt(best.Count - 1);
            }
        }

        return [.. best];
    }

    /// <summary>A sequence in the running batch.</summary>
    private sealed class Active(EngineRequest request)
    {
        public EngineRequest Request { get; } = request;

        public List<int> History { get; } = [.. request.Prompt];

        public TokenSampler Sampler { get; } = new TokenSampler(request.Options.Seed);

        public int Generated { get; set; }

        public int Last { get; set; }
    }
}
