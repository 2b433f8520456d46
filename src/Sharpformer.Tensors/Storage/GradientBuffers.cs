namespace Sharpformer.Tensors.Storage;

/// <summary>
/// Reusable F32 arrays for the tensors a backward pass allocates. While a backward pass runs on a thread (between
/// <see cref="Enter"/> and <see cref="Exit"/>), <see cref="Tensor.Empty"/> and <see cref="Tensor.Zeros"/> of F32 on that
/// thread take their array from here, and the autograd engine hands back the arrays of gradients it owns as soon as
/// their last consumer has run. The next allocation of the same length then reuses memory that is already mapped,
/// instead of a fresh array whose pages the kernel must fault in on first touch (the GC returns freed memory to the OS
/// between training steps). Only the engine returns arrays, and only arrays it knows nothing else references; the free
/// arrays of lengths that the last pass on a thread did not ask for are dropped when that pass ends, so the pool holds at
/// most what one pass had free at once.
/// </summary>
internal static class GradientBuffers
{
    /// <summary>Arrays shorter than this (one 4 KiB page) come from the GC as usual: they cost no page faults worth saving.</summary>
    internal const int MinimumLength = 1024;

    private static readonly Lock Gate = new();
    private static readonly Dictionary<int, Stack<float[]>> Free = [];

    [ThreadStatic]
    private static Session? _session;

    /// <summary>The session of the backward pass running on this thread, or null.</summary>
    internal static Session? Active => _session is { Depth: > 0 } session ? session : null;

    /// <summary>Starts (or nests into) this thread's backward-pass session.</summary>
    internal static Session Enter()
    {
        var session = _session ??= new Session();
        session.Depth++;
        return session;
    }

    /// <summary>Ends one level of <paramref name="session"/>; the outermost exit forgets the handed-out list and trims the pool.</summary>
    internal static void Exit(Session session)
    {
        session.Depth--;
        if (session.Depth > 0) return;
        session.ForgetHandedOut();
        lock (Gate)
        {
            foreach (int length in Free.Keys.ToArray())
            {
                if (!session.RequestedLengths.Contains(length)) Free.Remove(length);
            }
        }

        session.RequestedLengths.Clear();
    }

    /// <summary>Gives <paramref name="storage"/>'s array back for reuse. The caller guarantees that nothing reads or writes it any more.</summary>
    internal static void Return(ManagedStorage<float> storage)
    {
        var array = storage.Array;
        if (array.Length < MinimumLength) return;
        lock (Gate)
        {
            if (!Free.TryGetValue(array.Length, out var stack))
            {
                stack = new Stack<float[]>();
                Free[array.Length] = stack;
            }

            stack.Push(array);
        }
    }

    /// <summary>Drops every free array (tests; or a caller that wants the memory back after training).</summary>
    internal static void Clear()
    {
        lock (Gate)
        {
            Free.Clear();
        }
    }

    /// <summary>Free arrays held now, and their total length (tests).</summary>
    internal static (int Arrays, long Elements) FreeCount()
    {
        lock (Gate)
        {
            int arrays = 0;
            long elements = 0;
            foreach (var (length, stack) in Free)
            {
                arrays += stack.Count;
                elements += (long)length * stack.Count;
            }

            return (arrays, elements);
        }
    }

    private static float[]? TakeFree(int length)
    {
        lock (Gate)
        {
            return Free.TryGetValue(length, out var stack) && stack.TryPop(out var array) ? array : null;
        }
    }

    /// <summary>One thread's backward pass (nested passes, e.g. a checkpointed block's, share it).</summary>
    internal sealed class Session
    {
        private readonly List<ManagedStorage<float>> _handedOut = [];

        /// <summary>Nesting depth of the passes running on this thread.</summary>
        internal int Depth { get; set; }

        /// <summary>Storages handed out so far in the outermost pass; an index into this list marks a point in time.</summary>
        internal int HandedOutCount => _handedOut.Count;

        /// <summary>Lengths asked for during the outermost pass (the free arrays of other lengths are dropped at its end).</summary>
        internal HashSet<int> RequestedLengths { get; } = [];

        /// <summary>A storage of <paramref name="length"/> floats, from the free arrays when one fits, zero-filled when asked.</summary>
        internal ManagedStorage<float> Rent(long length, bool zeroed)
        {
            if (length < MinimumLength || length > Array.MaxLength) return new ManagedStorage<float>(length, zeroed);
            int n = (int)length;
            RequestedLengths.Add(n);
            var array = TakeFree(n);
            ManagedStorage<float> storage;
            if (array is null)
            {
                storage = new ManagedStorage<float>(n, zeroed);
            }
            else
            {
                if (zeroed) Array.Clear(array);
                storage = new ManagedStorage<float>(array);
            }

            _handedOut.Add(storage);
            return storage;
        }

        /// <summary>True when <paramref name="storage"/> was handed out at or after <paramref name="mark"/> (a <see cref="HandedOutCount"/>).</summary>
        internal bool HandedOutSince(int mark, TensorStorage storage)
        {
            for (int i = _handedOut.Count - 1; i >= mark; i--)
            {
                if (ReferenceEquals(_handedOut[i], storage)) return true;
            }

            return false;
        }

        /// <summary>Forgets the storages handed out after <paramref name="mark"/>, so the list holds no array longer than one node's run needs.</summary>
        internal void ForgetHandedOutSince(int mark) => _handedOut.RemoveRange(mark, _handedOut.Count - mark);

        internal void ForgetHandedOut() => _handedOut.Clear();
    }
}
