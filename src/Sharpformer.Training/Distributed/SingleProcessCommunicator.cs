namespace Sharpformer.Training.Distributed;

/// <summary>The group of one process: every collective is the identity. What training and inference use without MPI.</summary>
public sealed class SingleProcessCommunicator : ICommunicator
{
    /// <summary>The shared instance.</summary>
    public static SingleProcessCommunicator Instance { get; } = new();

    /// <inheritdoc/>
    public int Rank => 0;

    /// <inheritdoc/>
    public int Size => 1;

    /// <inheritdoc/>
    public bool SupportsCommunicationThread => true;

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> values)
    {
    }

    /// <inheritdoc/>
    public void AllReduceSum(Span<double> values)
    {
    }

    /// <inheritdoc/>
    public void Broadcast(Span<byte> values, int root) => CheckRoot(root);

    /// <inheritdoc/>
    public void Broadcast(Span<float> values, int root) => CheckRoot(root);

    /// <inheritdoc/>
    public byte[][]? Gather(ReadOnlySpan<byte> values, int root)
    {
        CheckRoot(root);
        return [values.ToArray()];
    }

    /// <inheritdoc/>
    public void Barrier()
    {
    }

    /// <inheritdoc/>
    public void Abort(int exitCode) => Environment.Exit(exitCode);

    /// <inheritdoc/>
    public void Dispose()
    {
    }

    private static void CheckRoot(int root)
    {
        if (root != 0) throw new ArgumentOutOfRangeException(nameof(root), root, "a single-process group has only rank 0.");
    }
}
