using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Sharpformer.Generation;
using Sharpformer.IO.Config;
using Sharpformer.Models.Gpt2;
using Sharpformer.NN;
using Sharpformer.Server;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer bench serve</c>: the serving engine (<see cref="InferenceEngine"/>, continuous batching) on a GPT-2
/// 124M-shaped model with random weights: aggregate decode tokens/s and time to first token with 1, 4 and 16 concurrent
/// streams, and the ratios issue 14 targets (16 streams ≥ 4× the tokens/s of one; time to first token at 16 ≤ 2× that
/// of one). It drives the engine directly with token ids, so HTTP and detokenization are not in the numbers.
/// Two loads: <b>steady</b>, S clients each sending its next request as soon as the last one ends (a closed loop, as
/// serving benchmarks such as vLLM's <c>--max-concurrency</c> or llama.cpp's server bench measure) after a random think
/// time (exponential, mean <c>--think-ms</c>: without it a client's next request would land exactly when the step that
/// ended its last one finishes, the one moment the loop is free, and time to first token would look better than under
/// real traffic), with output lengths drawn around <c>--tokens</c> so the clients fall out of step, measured after every
/// client's first request; and
/// <b>burst</b>, S requests queued at the same instant (the worst case for time to first token: S prompts to prefill
/// before the last one's first token).
/// </summary>
internal static class BenchServeCommand
{
    public static Command Create()
    {
        var tokens = new Option<int>("--tokens") { Description = "Tokens each stream generates.", DefaultValueFactory = _ => 64 };
        var promptLength = new Option<int>("--prompt-tokens") { Description = "Prompt length of each stream (random ids).", DefaultValueFactory = _ => 32 };
        var streams = new Option<string>("--streams") { Description = "Comma-separated concurrency levels.", DefaultValueFactory = _ => "1,4,16" };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON instead of a table." };
        var seconds = new Option<double>("--seconds") { Description = "Length of each steady-load measurement (clients stop sending new requests after it).", DefaultValueFactory = _ => 15 };
        var think = new Option<double>("--think-ms") { Description = "Steady load: mean of each client's random (exponential) pause before its next request.", DefaultValueFactory = _ => 50 };
        var tiny = new Option<bool>("--tiny") { Description = "A tiny model instead of the 124M shape (tests): checks the output, not the speed.", Hidden = true };
        var command = new Command("serve", "Continuous batching: aggregate decode tokens/s and time to first token at 1, 4 and 16 concurrent streams (GPT-2 124M shape, random weights).")
        {
            tokens, promptLength, streams, seconds, think, json, tiny,
        };
        command.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            int[] levels;
            try
            {
                levels = [.. parse.GetValue(streams)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture))];
            }
            catch (FormatException)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("error: --streams takes comma-separated integers, e.g. 1,4,16.").ConfigureAwait(false);
                return 2;
            }

            int newTokens = parse.GetValue(tokens), prompt = parse.GetValue(promptLength);
            double window = parse.GetValue(seconds);
            double thinkMs = parse.GetValue(think);
            if (levels.Length == 0 || levels.Any(l => l < 1) || newTokens < 1 || prompt < 1)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("error: --streams levels, --tokens and --prompt-tokens must be at least 1.").ConfigureAwait(false);
                return 2;
            }

            if (!(window > 0) || !(thinkMs >= 0))
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync("error: --seconds must be positive and --think-ms at least 0.").ConfigureAwait(false);
                return 2;
            }

            var model = RandomModel(parse.GetValue(tiny));
            if (prompt + MaxSteadyTokens(newTokens) > model.MaxPositions)
            {
                await parse.InvocationConfiguration.Error.WriteLineAsync($"error: --prompt-tokens + 1.5 × --tokens = {prompt + MaxSteadyTokens(newTokens)} exceeds the context of {model.MaxPositions}.").ConfigureAwait(false);
                return 2;
            }

            var burst = new List<Result>();
            var steady = new List<SteadyResult>();
            foreach (int level in levels)
            {
                // A warm-up pass at this level, then the measured ones.
                await Measure(model, level, prompt, Math.Min(newTokens, 8), ct).ConfigureAwait(false);
                steady.Add(await MeasureSteady(model, level, prompt, newTokens, window, thinkMs / 1000, ct).ConfigureAwait(false));
                burst.Add(await Measure(model, level, prompt, newTokens, ct).ConfigureAwait(false));
            }

            Print(output, steady, burst, parse.GetValue(json));
            return 0;
        });
        return command;
    }

    /// <summary>One concurrency level: tokens in all, wall seconds, aggregate decode tokens/s (once every stream decodes), mean time to first token, mean sequences per decode step.</summary>
    private sealed record Result(int Streams, int Tokens, double Seconds, double TokensPerSecond, double MeanTimeToFirstToken, double MeanBatch);

    /// <summary>One concurrency level under steady load: requests measured, aggregate tokens/s in the window, time to first token (median, mean, 90th percentile), mean sequences per decode step.</summary>
    private sealed record SteadyResult(int Streams, int Requests, double Seconds, double TokensPerSecond, double MedianTimeToFirstToken, double MeanTimeToFirstToken, double P90TimeToFirstToken, double MeanBatch);

    /// <summary>The longest output a steady-load client asks for: output lengths are drawn uniformly from [n/2, 3n/2].</summary>
    private static int MaxSteadyTokens(int newTokens) => newTokens + (newTokens / 2);

    private static Gpt2LMHeadModel RandomModel(bool tiny)
    {
        string shape = tiny
            ? """{"model_type": "gpt2", "vocab_size": 257, "n_positions": 128, "n_embd": 32, "n_layer": 2, "n_head": 4}"""
            : """{"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12}""";
        var config = (Gpt2Config)ModelConfig.Parse(shape);
        return Gpt2LMHeadModel.FromVarBuilder(config, VarBuilder.FromInit(seed: 1, std: (float)config.InitializerRange));
    }

    private static async Task<Result> Measure(Gpt2LMHeadModel model, int streams, int promptTokens, int newTokens, CancellationToken ct)
    {
        // Each slot holds just this run's tokens: 16 slots of the full 1024 would be a 1.2 GB cache.
        using var engine = new InferenceEngine(model, maxBatch: streams, maxQueue: streams, context: promptTokens + newTokens);
        var random = new Random(streams);
        // Greedy with no stop token: every stream generates exactly newTokens.
        var options = new GenerationOptions { MaxNewTokens = newTokens };
        var requests = Enumerable.Range(0, streams)
            .Select(_ => new EngineRequest([.. Enumerable.Range(0, promptTokens).Select(_ => random.Next(model.VocabSize))], options, [], cancellation: ct))
            .ToList();
        long start = Stopwatch.GetTimestamp();
        long stepsBefore = engine.Statistics.DecodeSteps, sequencesBefore = engine.Statistics.DecodeStepSequences;
        foreach (var request in requests)
        {
            if (engine.Enqueue(request) != EnqueueResult.Queued)
            {
                throw new InvalidOperationException("bench serve: the engine refused a request; raise its queue.");
            }
        }

        // Each stream's token times (seconds from the start, as the engine produced them).
        var arrivals = await Task.WhenAll(requests.Select(async r =>
        {
            var times = new List<double>();
            await foreach (var e in r.Events.ReadAllAsync(ct).ConfigureAwait(false))
            {
                if (e.Finish is null)
                {
                    times.Add(Stopwatch.GetElapsedTime(start, e.Timestamp).TotalSeconds);
                }
            }

            return times;
        })).ConfigureAwait(false);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        int total = arrivals.Sum(a => a.Count);

        // Decode throughput in steady state: tokens that arrived after every stream had its first token (all of them
        // decoding together), over that window.
        double allStarted = arrivals.Max(a => a[0]);
        double end = arrivals.Max(a => a[^1]);
        int decoded = arrivals.Sum(a => a.Count(t => t > allStarted));
        double decodeRate = end > allStarted ? decoded / (end - allStarted) : 0;
        long steps = engine.Statistics.DecodeSteps - stepsBefore;
        double meanBatch = steps == 0 ? 0 : (double)(engine.Statistics.DecodeStepSequences - sequencesBefore) / steps;
        return new Result(streams, total, seconds, decodeRate, arrivals.Average(a => a[0]), meanBatch);
    }

    /// <summary>
    /// Steady load: <paramref name="streams"/> clients, each sending its next request (a fresh random prompt, an output
    /// length drawn uniformly from [n/2, 3n/2]) a random think time (exponential, mean <paramref name="think"/> seconds)
    /// after its last one ends, for <paramref name="seconds"/>. The window
    /// opens when every client has finished its first request (by then the clients are out of step) and closes when they
    /// stop sending; throughput counts the tokens produced inside it, time to first token the requests queued inside it.
    /// </summary>
    private static async Task<SteadyResult> MeasureSteady(Gpt2LMHeadModel model, int streams, int promptTokens, int newTokens, double seconds, double think, CancellationToken ct)
    {
        using var engine = new InferenceEngine(model, maxBatch: streams, maxQueue: streams, context: promptTokens + MaxSteadyTokens(newTokens));
        long start = Stopwatch.GetTimestamp();
        double Now() => Stopwatch.GetElapsedTime(start).TotalSeconds;
        var firstDone = new double[streams];
        var clients = Enumerable.Range(0, streams).Select(client => Task.Run(async () =>
        {
            var random = new Random((streams * 1000) + client);
            var tokenTimes = new List<double>();
            var firstTokens = new List<(double Queued, double Wait)>();
            bool first = true;
            while (Now() < seconds)
            {
                if (think > 0)
                {
                    await Task.Delay(TimeSpan.FromSeconds(-think * Math.Log(1 - random.NextDouble())), ct).ConfigureAwait(false);
                }

                int length = random.Next(Math.Max(1, newTokens / 2), MaxSteadyTokens(newTokens) + 1);
                var request = new EngineRequest(
                    [.. Enumerable.Range(0, promptTokens).Select(_ => random.Next(model.VocabSize))],
                    new GenerationOptions { MaxNewTokens = length },
                    [],
                    cancellation: ct);
                double queued = Now();
                if (engine.Enqueue(request) != EnqueueResult.Queued)
                {
                    throw new InvalidOperationException("bench serve: the engine refused a request; raise its queue.");
                }

                bool firstToken = true;
                await foreach (var e in request.Events.ReadAllAsync(ct).ConfigureAwait(false))
                {
                    if (e.Finish is null)
                    {
                        double t = Stopwatch.GetElapsedTime(start, e.Timestamp).TotalSeconds;
                        tokenTimes.Add(t);
                        if (firstToken)
                        {
                            firstTokens.Add((queued, t - queued));
                            firstToken = false;
                        }
                    }
                }

                if (first)
                {
                    firstDone[client] = Now();
                    first = false;
                }
            }

            return (tokenTimes, firstTokens);
        }, ct)).ToList();
        var results = await Task.WhenAll(clients).ConfigureAwait(false);

        double open = firstDone.Max();
        double close = Math.Max(seconds, open);
        var waits = results.SelectMany(r => r.firstTokens).Where(f => f.Queued >= open && f.Queued < close).Select(f => f.Wait).Order().ToArray();
        int inWindow = results.Sum(r => r.tokenTimes.Count(t => t >= open && t < close));
        double rate = close > open ? inWindow / (close - open) : 0;
        long steps = engine.Statistics.DecodeSteps;
        double meanBatch = steps == 0 ? 0 : (double)engine.Statistics.DecodeStepSequences / steps;
        return waits.Length == 0
            ? new SteadyResult(streams, 0, close - open, rate, double.NaN, double.NaN, double.NaN, meanBatch)
            : new SteadyResult(streams, waits.Length, close - open, rate, Percentile(waits, 0.5), waits.Average(), Percentile(waits, 0.9), meanBatch);
    }

    /// <summary>The <paramref name="q"/>-quantile of sorted values, by linear interpolation (numpy's default).</summary>
    private static double Percentile(double[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int low = (int)Math.Floor(position);
        int high = Math.Min(low + 1, sorted.Length - 1);
        return sorted[low] + ((position - low) * (sorted[high] - sorted[low]));
    }

    private static void Print(TextWriter output, List<SteadyResult> steady, List<Result> results, bool json)
    {
        var one = results.FirstOrDefault(r => r.Streams == 1);
        var steadyOne = steady.FirstOrDefault(r => r.Streams == 1);
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                steady = steady.Select(r => new { streams = r.Streams, requests = r.Requests, seconds = r.Seconds, tokens_per_second = r.TokensPerSecond, time_to_first_token_median_s = r.MedianTimeToFirstToken, time_to_first_token_mean_s = r.MeanTimeToFirstToken, time_to_first_token_p90_s = r.P90TimeToFirstToken, mean_batch = r.MeanBatch }),
                results = results.Select(r => new { streams = r.Streams, tokens = r.Tokens, seconds = r.Seconds, tokens_per_second = r.TokensPerSecond, time_to_first_token_s = r.MeanTimeToFirstToken, mean_batch = r.MeanBatch }),
            }));
            return;
        }

        output.WriteLine("steady load (closed loop: each client sends its next request a random think time after the last one ends)");
        output.WriteLine($"{"streams",7} {"requests",8} {"seconds",8} {"tok/s",8} {"TTFT p50",9} {"mean",7} {"p90",7} {"batch",6} {"tok/s ×1",9} {"TTFT ×1",8}");
        foreach (var r in steady)
        {
            string speedup = steadyOne is null ? "-" : (r.TokensPerSecond / steadyOne.TokensPerSecond).ToString("F2", CultureInfo.InvariantCulture);
            string ttft = steadyOne is null ? "-" : (r.MedianTimeToFirstToken / steadyOne.MedianTimeToFirstToken).ToString("F2", CultureInfo.InvariantCulture);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.Streams,7} {r.Requests,8} {r.Seconds,8:F2} {r.TokensPerSecond,8:F1} {r.MedianTimeToFirstToken * 1000,9:F1} {r.MeanTimeToFirstToken * 1000,7:F1} {r.P90TimeToFirstToken * 1000,7:F1} {r.MeanBatch,6:F1} {speedup,9} {ttft,8}"));
        }

        output.WriteLine("tok/s: every token produced between the moment all clients finished their first request and the end; TTFT (ms): requests queued in that window, queueing to first token.");
        output.WriteLine();
        output.WriteLine("burst (all requests queued at once)");
        output.WriteLine($"{"streams",7} {"tokens",7} {"seconds",8} {"decode tok/s",12} {"TTFT ms",8} {"batch",6} {"tok/s ×1",9} {"TTFT ×1",8}");
        foreach (var r in results)
        {
            string speedup = one is null ? "-" : (r.TokensPerSecond / one.TokensPerSecond).ToString("F2", CultureInfo.InvariantCulture);
            string ttft = one is null ? "-" : (r.MeanTimeToFirstToken / one.MeanTimeToFirstToken).ToString("F2", CultureInfo.InvariantCulture);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{r.Streams,7} {r.Tokens,7} {r.Seconds,8:F2} {r.TokensPerSecond,12:F1} {r.MeanTimeToFirstToken * 1000,8:F1} {r.MeanBatch,6:F1} {speedup,9} {ttft,8}"));
        }

        output.WriteLine("decode tok/s: all streams' tokens after the last stream's first token, over that window; TTFT: mean from queueing to the first token (prefill included).");
        output.WriteLine("A burst of S distinct prompts cannot beat S prefills of compute: its TTFT grows with S on any compute-bound machine.");
        output.WriteLine("targets (issue 14): tok/s at 16 streams ≥ 4× one stream; TTFT at 16 streams ≤ 2× one stream (steady load, median).");
    }
}
