using System.Collections.Concurrent;
using System.Diagnostics;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Training.Distributed;

/// <summary>
/// Averages the gradients of data-parallel ranks, as PyTorch's DistributedDataParallel does: the trainable parameters
/// are packed, in reverse registration order (the order backward finishes them), into buckets of about
/// <see cref="BucketBytes"/>; <see cref="GradientReady"/> (the autograd hook of <see cref="Tensor.Backward(Action{Tensor})"/>)
/// copies each finished gradient into its bucket, and a full bucket is handed to a communication thread that
/// all-reduces it while backward goes on with earlier layers. <see cref="Finish"/> sends what is left, waits, and
/// writes the averaged gradients back. Buckets are always sent in index order, so every rank issues the same
/// collectives in the same order.
/// </summary>
public sealed class GradientReducer : IDisposable
{
    /// <summary>DDP's default bucket size (25 MiB).</summary>
    public const long DefaultBucketBytes = 25L << 20;

    private readonly ICommunicator _communicator;
    private readonly Parameter[] _parameters;
    private readonly Bucket[] _buckets;
    private readonly (int Bucket, int Offset)[] _where;
    private readonly Dictionary<Tensor, int> _index = new(ReferenceEqualityComparer.Instance);
    private readonly BlockingCollection<Bucket>? _queue;
    private readonly Thread? _thread;
    private int _nextToSend;
    private double _communicationSeconds;

    /// <summary>Plans the buckets over <paramref name="parameters"/>.</summary>
    /// <param name="parameters">The trainable parameters, in registration order (the same on every rank).</param>
    /// <param name="communicator">The group to average over.</param>
    /// <param name="bucketBytes">Bytes per bucket (a parameter larger than this gets a bucket of its own).</param>
    /// <param name="overlap">All-reduce on a communication thread during backward; false all-reduces in <see cref="Finish"/>.</param>
    /// <exception cref="ArgumentException">No parameters, or a bucket size below 1.</exception>
    public GradientReducer(IReadOnlyList<Parameter> parameters, ICommunicator communicator, long bucketBytes = DefaultBucketBytes, bool overlap = true)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(communicator);
        if (parameters.Count == 0) throw new ArgumentException("GradientReducer: no trainable parameters to reduce.", nameof(parameters));
        if (bucketBytes < 1) throw new ArgumentOutOfRangeException(nameof(bucketBytes), bucketBytes, "the bucket size must be at least 1 byte.");
        _communicator = communicator;
        _parameters = [.. parameters];
        BucketBytes = bucketBytes;
        _where = new (int, int)[_parameters.Length];

        // Reverse registration order: the output layers' parameters finish first in backward.
        var buckets = new List<Bucket>();
        var members = new List<int>();
        long elements = 0;
        for (int i = _parameters.Length - 1; i >= 0; i--)
        {
            long size = _parameters[i].Shape.ElementCount;
            if (members.Count > 0 && (elements + size) * sizeof(float) > bucketBytes)
            {
                buckets.Add(new Bucket(buckets.Count, [.. members], elements));
                members.Clear();
                elements = 0;
            }

            _where[i] = (buckets.Count, checked((int)elements));
            members.Add(i);
            elements += size;
        }

        buckets.Add(new Bucket(buckets.Count, [.. members], elements));
        _buckets = [.. buckets];
        Overlapping = overlap && communicator.Size > 1 && communicator.SupportsCommunicationThread;
        if (Overlapping)
        {
            _queue = [];
            _thread = new Thread(Communicate) { IsBackground = true, Name = "gradient all-reduce" };
            _thread.Start();
        }
    }

    /// <summary>Bytes per bucket.</summary>
    public long BucketBytes { get; }

    /// <summary>The number of buckets.</summary>
    public int BucketCount => _buckets.Length;

    /// <summary>True when buckets are all-reduced on a communication thread during backward.</summary>
    public bool Overlapping { get; }

    /// <summary>Bytes of gradient each rank all-reduces per optimizer step (4 × trainable elements).</summary>
    public long BytesPerStep => _buckets.Sum(b => b.Buffer.Length) * (long)sizeof(float);

    /// <summary>Seconds spent inside all-reduce calls during the last step (on the communication thread when overlapping).</summary>
    public double LastCommunicationSeconds { get; private set; }

    /// <summary>Seconds <see cref="Finish"/> waited for communication after backward had ended during the last step (the part not hidden behind compute).</summary>
    public double LastWaitSeconds { get; private set; }

    /// <summary>The hook to pass to <see cref="Tensor.Backward(Action{Tensor})"/> on the step's last micro-batch.</summary>
    public Action<Tensor> GradientReady => OnReady;

    /// <summary>Starts a step: no gradient is ready yet.</summary>
    public void BeginStep()
    {
        _index.Clear();
        for (int i = 0; i < _parameters.Length; i++) _index[_parameters[i].Value] = i;
        foreach (var bucket in _buckets) bucket.Reset();
        _nextToSend = 0;
        _communicationSeconds = 0;
    }

    /// <summary>Sends every bucket not sent yet, waits for all, and replaces each gradient by the average over the ranks.</summary>
    /// <exception cref="InvalidOperationException">A rank had a gradient for a parameter that this rank has none for (the ranks' graphs differ).</exception>
    public void Finish()
    {
        var clock = Stopwatch.StartNew();
        foreach (var bucket in _buckets)
        {
            if (!bucket.Packed) Pack(bucket);
        }

        SendInOrder();
        foreach (var bucket in _buckets)
        {
            bucket.Done.Wait();
            if (bucket.Failure is { } failure) throw new InvalidOperationException("the gradient all-reduce failed: " + failure.Message, failure);
        }

        LastWaitSeconds = Overlapping ? clock.Elapsed.TotalSeconds : 0;
        LastCommunicationSeconds = Volatile.Read(ref _communicationSeconds);
        float scale = 1f / _communicator.Size;
        foreach (var bucket in _buckets) Unpack(bucket, scale);
    }

    /// <summary>
    /// Stops the communication thread. When a step failed on this rank the thread may be inside an all-reduce the other
    /// ranks will never join: it is then left behind (a background thread) rather than waited for, so the failure can
    /// reach the caller, which ends the job (MPI_Abort).
    /// </summary>
    public void Dispose()
    {
        _queue?.CompleteAdding();
        if (_thread is not null && !_thread.Join(TimeSpan.FromSeconds(5))) return;
        _queue?.Dispose();
        foreach (var bucket in _buckets) bucket.Done.Dispose();
    }

    private void OnReady(Tensor leaf)
    {
        if (!_index.TryGetValue(leaf, out int i)) return; // not one of ours (a frozen tensor, an input)
        var bucket = _buckets[_where[i].Bucket];
        if (bucket.Packed) return;
        bucket.Ready++;
        if (bucket.Ready == bucket.Members.Length)
        {
            Pack(bucket);
            if (Overlapping) SendInOrder();
        }
    }

    private void Pack(Bucket bucket)
    {
        foreach (int i in bucket.Members)
        {
            int offset = _where[i].Offset;
            var target = bucket.Buffer.AsSpan(offset, (int)_parameters[i].Shape.ElementCount);
            if (_parameters[i].Value.Grad is { } grad)
            {
                grad.AsReadOnlySpan<float>().CopyTo(target);
            }
            else
            {
                target.Clear();
            }
        }

        bucket.Packed = true;
    }

    /// <summary>
    /// Sends the packed buckets from the next unsent one on, stopping at the first that is not packed: to the
    /// communication thread when overlapping, else reduced here and now.
    /// </summary>
    private void SendInOrder()
    {
        while (_nextToSend < _buckets.Length && _buckets[_nextToSend].Packed)
        {
            var bucket = _buckets[_nextToSend++];
            if (_queue is not null)
            {
                _queue.Add(bucket);
            }
            else
            {
                Reduce(bucket);
            }
        }
    }

    private void Communicate()
    {
        foreach (var bucket in _queue!.GetConsumingEnumerable())
        {
            Reduce(bucket);
        }
    }

    private void Reduce(Bucket bucket)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            _communicator.AllReduceSum(bucket.Buffer);
        }
        catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException)
        {
            bucket.Failure = e;
        }
        finally
        {
            double seconds = clock.Elapsed.TotalSeconds;
            double before, after;
            do
            {
                before = Volatile.Read(ref _communicationSeconds);
                after = before + seconds;
            }
            while (Interlocked.CompareExchange(ref _communicationSeconds, after, before) != before);
            bucket.Done.Set();
        }
    }

    private void Unpack(Bucket bucket, float scale)
    {
        foreach (int i in bucket.Members)
        {
            var source = bucket.Buffer.AsSpan(_where[i].Offset, (int)_parameters[i].Shape.ElementCount);
            if (_parameters[i].Value.Grad is { } grad)
            {
                System.Numerics.Tensors.TensorPrimitives.Multiply(source, scale, grad.AsSpan<float>());
            }
            else if (source.ContainsAnyExcept(0f))
            {
                throw new InvalidOperationException($"GradientReducer: parameter {i} ({_parameters[i].Shape}) has a gradient on another rank but none here: the ranks ran different graphs. Every rank must run the same model on batches of the same shape.");
            }
        }
    }

    private sealed class Bucket(int index, int[] members, long elements)
    {
        public int Index { get; } = index;

        public int[] Members { get; } = members;

        public float[] Buffer { get; } = new float[elements];

        public ManualResetEventSlim Done { get; } = new(false);

        public int Ready { get; set; }

        public bool Packed { get; set; }

        public Exception? Failure { get; set; }

        public void Reset()
        {
            Ready = 0;
            Packed = false;
            Failure = null;
            Done.Reset();
        }
    }
}
