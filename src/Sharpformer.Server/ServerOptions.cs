namespace Sharpformer.Server;

/// <summary>How the server listens, whom it lets in, and how much work it takes on.</summary>
public sealed record ServerOptions
{
    /// <summary>The address to bind: 127.0.0.1 (loopback only) unless told otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>The TCP port; 0 picks a free one (read <see cref="SharpformerServer.Address"/> after starting).</summary>
    public int Port { get; init; } = 8000;

    /// <summary>Accepted API keys (<c>Authorization: Bearer KEY</c>); empty lets every request in.</summary>
    public IReadOnlyList<string> ApiKeys { get; init; } = [];

    /// <summary>Per generative model: the most sequences decoded together (cache slots).</summary>
    public int MaxBatch { get; init; } = 16;

    /// <summary>Per generative model: the most requests waiting for a slot; beyond it the server answers 429 with Retry-After.</summary>
    public int MaxQueue { get; init; } = 64;

    /// <summary>
    /// Per generative model: tokens per sequence (prompt plus completion), capped at the model's context; null: the
    /// model's context. The KV cache holds MaxBatch × this many tokens per layer.
    /// </summary>
    public int? MaxContext { get; init; }

    /// <summary>The largest request body accepted, in bytes (larger: 413).</summary>
    public long MaxRequestBodyBytes { get; init; } = 1 << 20;

    /// <summary>Per-request deadline: a generation still running after this ends with a timeout error.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>On shutdown, how long in-flight generations may finish before they are cancelled.</summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Seconds a 429 answer asks the client to wait (Retry-After).</summary>
    public int RetryAfterSeconds { get; init; } = 1;

    /// <summary>Throws when a value is out of range, naming the option.</summary>
    /// <exception cref="ArgumentException">A value is invalid.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host))
        {
            throw new ArgumentException("--host: give an address to bind, e.g. 127.0.0.1 (loopback) or 0.0.0.0 (every interface).");
        }

        if (Port is < 0 or > 65535)
        {
            throw new ArgumentException($"--port {Port}: must be in [0, 65535] (0 picks a free port).");
        }

        if (MaxBatch < 1 || MaxQueue < 1)
        {
            throw new ArgumentException($"--max-batch {MaxBatch} / --max-queue {MaxQueue}: both must be at least 1.");
        }

        if (MaxContext is < 2)
        {
            throw new ArgumentException($"--max-context {MaxContext}: must be at least 2 tokens (leave it out for the model's context).");
        }

        if (MaxRequestBodyBytes < 1024)
        {
            throw new ArgumentException($"--max-body-bytes {MaxRequestBodyBytes}: must be at least 1024.");
        }

        if (RequestTimeout <= TimeSpan.Zero || ShutdownGrace < TimeSpan.Zero || RetryAfterSeconds < 1)
        {
            throw new ArgumentException("--timeout must be positive, the shutdown grace not negative, and Retry-After at least 1 second.");
        }

        foreach (var key in ApiKeys)
        {
            if (string.IsNullOrWhiteSpace(key) || key.Any(char.IsWhiteSpace))
            {
                throw new ArgumentException("An API key is empty or contains whitespace; give keys as single tokens (one per line in --api-keys-file).");
            }
        }
    }
}
