namespace Sharpformer.Training.Distributed;

/// <summary>
/// The collective operations data-parallel training and sharded inference need, over a fixed group of processes
/// (ranks 0 … Size − 1). Every rank must call the same collectives in the same order with the same element counts, as
/// in MPI. <see cref="MpiCommunicator"/> runs them over Open MPI; <see cref="SingleProcessCommunicator"/> is the
/// one-rank group, so all code paths run without MPI.
/// </summary>
public interface ICommunicator : IDisposable
{
    /// <summary>This process's rank, 0 … <see cref="Size"/> − 1.</summary>
    int Rank { get; }

    /// <summary>The number of processes in the group.</summary>
    int Size { get; }

    /// <summary>True when collectives may be called from a thread other than the one that created the communicator (one at a time).</summary>
    bool SupportsCommunicationThread { get; }

    /// <summary>Replaces <paramref name="values"/> on every rank by their element-wise sum over all ranks.</summary>
    /// <param name="values">This rank's values in, the sums out.</param>
    void AllReduceSum(Span<float> values);

    /// <summary>Replaces <paramref name="values"/> on every rank by their element-wise sum over all ranks.</summary>
    /// <param name="values">This rank's values in, the sums out.</param>
    void AllReduceSum(Span<double> values);

    /// <summary>Copies <paramref name="values"/> of rank <paramref name="root"/> into every other rank's <paramref name="values"/>.</summary>
    /// <param name="values">The data (read on the root, written elsewhere); the same length on every rank.</param>
    /// <param name="root">The sending rank.</param>
    void Broadcast(Span<byte> values, int root);

    /// <summary>Copies <paramref name="values"/> of rank <paramref name="root"/> into every other rank's <paramref name="values"/>.</summary>
    /// <param name="values">The data (read on the root, written elsewhere); the same length on every rank.</param>
    /// <param name="root">The sending rank.</param>
    void Broadcast(Span<float> values, int root);

    /// <summary>Collects each rank's bytes (any length, possibly empty) on <paramref name="root"/>, in rank order.</summary>
    /// <param name="values">This rank's contribution.</param>
    /// <param name="root">The receiving rank.</param>
    /// <returns>On the root, one array per rank in rank order; elsewhere null.</returns>
    byte[][]? Gather(ReadOnlySpan<byte> values, int root);

    /// <summary>Waits until every rank has called it.</summary>
    void Barrier();

    /// <summary>Ends every process of the group at once with <paramref name="exitCode"/> (MPI_Abort); for a failure on one rank that the others cannot learn of otherwise.</summary>
    /// <param name="exitCode">The exit code.</param>
    void Abort(int exitCode);
}
