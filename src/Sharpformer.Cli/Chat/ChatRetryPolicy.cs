using System.ClientModel.Primitives;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Sharpformer.Cli.Chat;

/// <summary>
/// The OpenAI client's retry policy for <c>chat</c>: the SDK's choice of what to retry (429, 408, 5xx, network
/// failures), at most <c>maxRetries</c> times, waiting what the server asks (<c>retry-after-ms</c>, else
/// <c>Retry-After</c> in seconds or as an HTTP date) or else 1, 2, 4… s (at most 30 s). A server that asks for more
/// than <see cref="MaxWait"/> is not retried: the error says how long it asked for.
/// </summary>
internal sealed class ChatRetryPolicy : ClientRetryPolicy
{
    /// <summary>The longest wait the policy accepts from a server before giving up instead.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    private readonly Func<TimeSpan, CancellationToken, Task> _wait;
    private readonly ConditionalWeakTable<PipelineMessage, StrongBox<int>> _tries = [];

    /// <param name="maxRetries">Retries after the first attempt.</param>
    /// <param name="wait">Waits between attempts; null means Task.Delay (tests pass one that records instead).</param>
    public ChatRetryPolicy(int maxRetries, Func<TimeSpan, CancellationToken, Task>? wait = null)
        : base(maxRetries)
    {
        MaxRetries = maxRetries;
        _wait = wait ?? Task.Delay;
    }

    /// <summary>Retries after the first attempt.</summary>
    public int MaxRetries { get; }

    /// <summary>Failed attempts of the last request that failed.</summary>
    public int Attempts { get; private set; }

    /// <summary>What the server last asked to wait (Retry-After), if it asked.</summary>
    public TimeSpan? LastRetryAfter { get; private set; }

    // The SDK's ShouldRetryAsync asks this method too, so one override sees every failed try, sync or async.
    protected override bool ShouldRetry(PipelineMessage message, Exception? exception) =>
        Failed(message) && base.ShouldRetry(message, exception) && WithinMaxWait(message);

    protected override TimeSpan GetNextDelay(PipelineMessage message, int tryCount) =>
        RetryAfter(message) ?? TimeSpan.FromSeconds(Math.Min(30, Math.Pow(2, Math.Max(0, tryCount - 1))));

    protected override Task WaitAsync(TimeSpan time, CancellationToken cancellationToken) => _wait(time, cancellationToken);

    protected override void Wait(TimeSpan time, CancellationToken cancellationToken) => _wait(time, cancellationToken).GetAwaiter().GetResult();

    /// <summary>Counts a failed try of <paramref name="message"/> (the policy is asked about every failed try, each request being its own message).</summary>
    private bool Failed(PipelineMessage message)
    {
        var tries = _tries.GetOrCreateValue(message);
        tries.Value++;
        Attempts = tries.Value;
        return true;
    }

    private bool WithinMaxWait(PipelineMessage message) => RetryAfter(message) is not { } asked || asked <= MaxWait;

    /// <summary>The wait the response asks for: retry-after-ms (OpenAI's), else Retry-After as seconds or an HTTP date.</summary>
    private TimeSpan? RetryAfter(PipelineMessage message)
    {
        if (message.Response is not { } response)
        {
            return null;
        }

        TimeSpan? asked = null;
        if (response.Headers.TryGetValue("retry-after-ms", out var ms) && double.TryParse(ms, NumberStyles.Float, CultureInfo.InvariantCulture, out double milliseconds) && milliseconds >= 0)
        {
            asked = TimeSpan.FromMilliseconds(milliseconds);
        }
        else if (response.Headers.TryGetValue("Retry-After", out var value) && value is not null)
        {
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) && seconds >= 0)
            {
                asked = TimeSpan.FromSeconds(seconds);
            }
            else if (DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
            {
                var left = at - DateTimeOffset.UtcNow;
                asked = left > TimeSpan.Zero ? left : TimeSpan.Zero;
            }
        }

        if (asked is not null)
        {
            LastRetryAfter = asked;
        }

        return asked;
    }
}
