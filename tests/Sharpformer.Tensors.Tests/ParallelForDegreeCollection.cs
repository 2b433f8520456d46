using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Tests;

/// <summary>
/// The tests that set <see cref="ParallelFor.MaxDegreeOfParallelism"/>, a process-wide setting, run alone. Before, the
/// collection had no definition, so its tests ran beside the other classes: while one ran on one thread, a test
/// elsewhere could split its rows in one call and not in the next, and a result that depends on the split (per-chunk
/// partial sums) changed under it. CI saw it once: AddLayerNormTests' bit-for-bit dgamma on the no-SIMD tier.
/// </summary>
[CollectionDefinition("ParallelFor degree", DisableParallelization = true)]
public sealed class ParallelForDegreeCollection;
