using Sharpformer.Training.Distributed;

namespace Sharpformer.Training.Tests.Distributed;

/// <summary>
/// An in-process stand-in for an MPI group: N ranks on N threads, each collective a rendezvous of all ranks. It checks
/// what MPI cannot: that every rank issues the same collective with the same element count at the same turn.
/// </summary>
internal sealed class ThreadGroup : IDisposable
{
    private readonly Barrier _barrier;
    private readonly object?[] _slots;
    private readonly string[] _calls;

    public ThreadGroup(int size)
    {
        Size = size;
        _barrier = new Barrier(size);
        _slots = new object?[size];
        _calls = new string[size];
        Ranks = [.. Enumerable.Range(0, size).Select(r => new Member(this, r))];
    }

    public int Size { get; }

    public void Dispose() => _barrier.Dispose();

    public IReadOnlyList<Member> Ranks { get; }

    /// <summary>Runs <paramref name="body"/> on one thread per rank and rethrows the first failure.</summary>
    public void Run(Action<Member> body)
    {
        var failures = new Exception?[Size];
        var threads = Ranks.Select(rank => new Thread(() =>
        {
            try
            {
                body(rank);
            }
            catch (Exception e)
            {
                failures[rank.Rank] = e;
                _barrier.RemoveParticipant();
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        if (failures.FirstOrDefault(f => f is not null) is { } failure) throw new AggregateException(failure);
    }

    private T[] Exchange<T>(int rank, string call, T[] mine)
        where T : System.Numerics.INumber<T>
    {
        _slots[rank] = mine;
        _calls[rank] = call + ":" + mine.Length;
        _barrier.SignalAndWait();
        if (_calls.Distinct().Count() != 1) throw new InvalidOperationException("ranks issued different collectives: " + string.Join(" | ", _calls));
        var all = _slots.Cast<T[]>().ToArray();
        var result = new T[mine.Length];
        for (int i = 0; i < result.Length; i++)
        {
            T sum = T.Zero;
            foreach (var values in all) sum += values[i];
            result[i] = sum;
        }

        _barrier.SignalAndWait();
        return result;
    }

    private byte[][] GatherAll(int rank, byte[] mine)
    {
        _slots[rank] = mine;
        _calls[rank] = "gather";
        _barrier.SignalAndWait();
        var all = _slots.Cast<byte[]>().ToArray();
        _barrier.SignalAndWait();
        return all;
    }

    private byte[] BroadcastFrom(int rank, int root, byte[] mine)
    {
        _slots[rank] = mine;
        _calls[rank] = "bcast:" + mine.Length;
        _barrier.SignalAndWait();
        if (_calls.Distinct().Count() != 1) throw new InvalidOperationException("ranks issued different collectives: " + string.Join(" | ", _calls));
        var result = (byte[])_slots[root]!;
        _barrier.SignalAndWait();
        return result;
    }

    internal sealed class Member(ThreadGroup group, int rank) : ICommunicator
    {
        public int Rank { get; } = rank;

        public int Size => group.Size;

        public bool SupportsCommunicationThread => true;

        public int AllReduceCalls { get; private set; }

        public void AllReduceSum(Span<float> values)
        {
            AllReduceCalls++;
            group.Exchange(Rank, "float", values.ToArray()).CopyTo(values);
        }

        public void AllReduceSum(Span<double> values) => group.Exchange(Rank, "double", values.ToArray()).CopyTo(values);

        public void Broadcast(Span<byte> values, int root) => group.BroadcastFrom(Rank, root, values.ToArray()).CopyTo(values);

        public void Broadcast(Span<float> values, int root) => Broadcast(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values), root);

        public byte[][]? Gather(ReadOnlySpan<byte> values, int root)
        {
            var all = group.GatherAll(Rank, values.ToArray());
            return Rank == root ? all : null;
        }

        public void Barrier() => group.Exchange(Rank, "barrier", Array.Empty<int>());

        public void Abort(int exitCode) => throw new InvalidOperationException($"rank {Rank} aborted with {exitCode}");

        public void Dispose()
        {
        }
    }
}
