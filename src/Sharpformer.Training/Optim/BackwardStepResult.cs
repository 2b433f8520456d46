namespace Sharpformer.Training.Optim;

/// <summary>What <see cref="Optimizer.BackwardAndStep"/> did.</summary>
/// <param name="GradientNorm">The global L2 norm of the gradients before any clipping, as <see cref="GradientClipping.GlobalNorm(IEnumerable{NN.Parameter})"/> computes it (not finite when a gradient holds an overflow or a NaN).</param>
/// <param name="Stepped">Whether the parameters were updated (and <see cref="Optimizer.StepCount"/> advanced): false only when clipping found a non-finite norm and skipped the update.</param>
public readonly record struct BackwardStepResult(double GradientNorm, bool Stepped);
