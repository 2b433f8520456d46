using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Sharpformer.Server;

/// <summary>The counters behind <c>/metrics</c> (Prometheus text format 0.0.4).</summary>
internal sealed class ServerMetrics
{
    private static readonly double[] TtftBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private readonly ConcurrentDictionary<(string Route, int Status), long> _requests = new();
    private readonly long[] _ttftCounts = new long[TtftBuckets.Length + 1];
    private readonly object _ttftLock = new();
    private readonly object _rateLock = new();
    private double _ttftSum;
    private long _ttftCount;
    private long _lastScrape = Stopwatch.GetTimestamp();
    private long _lastTokens;

    public void CountRequest(string route, int status) => _requests.AddOrUpdate((route, status), 1, (_, n) => n + 1);

    public void ObserveTimeToFirstToken(double seconds)
    {
        lock (_ttftLock)
        {
            int bucket = 0;
            while (bucket < TtftBuckets.Length && seconds > TtftBuckets[bucket])
            {
                bucket++;
            }

            _ttftCounts[bucket]++;
            _ttftSum += seconds;
            _ttftCount++;
        }
    }

    /// <summary>The exposition text; the tokens/s gauge covers the time since the previous scrape (or since start).</summary>
    public string Render(IReadOnlyDictionary<string, InferenceEngine> engines)
    {
        var text = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        text.AppendLine("# HELP sharpformer_requests_total HTTP requests by route and status.");
        text.AppendLine("# TYPE sharpformer_requests_total counter");
        foreach (var ((route, status), count) in _requests.OrderBy(r => r.Key.Route, StringComparer.Ordinal).ThenBy(r => r.Key.Status))
        {
            text.Append(c, $"sharpformer_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}\n");
        }

        text.AppendLine("# HELP sharpformer_queue_depth Requests waiting for a batch slot.");
        text.AppendLine("# TYPE sharpformer_queue_depth gauge");
        foreach (var (name, engine) in engines)
        {
            text.Append(c, $"sharpformer_queue_depth{{model=\"{name}\"}} {engine.QueueDepth}\n");
        }

        text.AppendLine("# HELP sharpformer_active_sequences Sequences in the running batch.");
        text.AppendLine("# TYPE sharpformer_active_sequences gauge");
        foreach (var (name, engine) in engines)
        {
            text.Append(c, $"sharpformer_active_sequences{{model=\"{name}\"}} {engine.ActiveSequences}\n");
        }

        text.AppendLine("# HELP sharpformer_generated_tokens_total Tokens generated.");
        text.AppendLine("# TYPE sharpformer_generated_tokens_total counter");
        long tokens = 0;
        foreach (var (name, engine) in engines)
        {
            tokens += engine.Statistics.GeneratedTokens;
            text.Append(c, $"sharpformer_generated_tokens_total{{model=\"{name}\"}} {engine.Statistics.GeneratedTokens}\n");
        }

        text.AppendLine("# HELP sharpformer_decode_steps_total Batched decode steps, and the sequences they carried in all.");
        text.AppendLine("# TYPE sharpformer_decode_steps_total counter");
        foreach (var (name, engine) in engines)
        {
            text.Append(c, $"sharpformer_decode_steps_total{{model=\"{name}\"}} {engine.Statistics.DecodeSteps}\n");
            text.Append(c, $"sharpformer_decode_step_sequences_total{{model=\"{name}\"}} {engine.Statistics.DecodeStepSequences}\n");
        }

        double rate;
        lock (_rateLock)
        {
            double seconds = Stopwatch.GetElapsedTime(_lastScrape).TotalSeconds;
            rate = seconds > 0 ? (tokens - _lastTokens) / seconds : 0;
            _lastScrape = Stopwatch.GetTimestamp();
            _lastTokens = tokens;
        }

        text.AppendLine("# HELP sharpformer_tokens_per_second Generated tokens per second since the previous scrape.");
        text.AppendLine("# TYPE sharpformer_tokens_per_second gauge");
        text.Append(c, $"sharpformer_tokens_per_second {rate:G6}\n");

        text.AppendLine("# HELP sharpformer_time_to_first_token_seconds From queueing to the first generated token.");
        text.AppendLine("# TYPE sharpformer_time_to_first_token_seconds histogram");
        lock (_ttftLock)
        {
            long cumulative = 0;
            for (int b = 0; b < TtftBuckets.Length; b++)
            {
                cumulative += _ttftCounts[b];
                text.Append(c, $"sharpformer_time_to_first_token_seconds_bucket{{le=\"{TtftBuckets[b]}\"}} {cumulative}\n");
            }

            cumulative += _ttftCounts[^1];
            text.Append(c, $"sharpformer_time_to_first_token_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n");
            text.Append(c, $"sharpformer_time_to_first_token_seconds_sum {_ttftSum:G9}\n");
            text.Append(c, $"sharpformer_time_to_first_token_seconds_count {_ttftCount}\n");
        }

        return text.ToString();
    }
}
