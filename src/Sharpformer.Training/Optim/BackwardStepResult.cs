namespace Sharpformer.Training.Optim;

/// <summary>What <see cref="Optimizer.BackwardAndStep"/> did.</summary>
/// <param name="Fused">True when each parameter was updated inside the backward pass as soon as its gradient was final; false when the update ran after the whole backward pass (clipping, accumulated gradients, or a parameter that cannot be updated).</param>
/// <param name="GradientNorm">The global L2 norm of the gradients before any clipping, as <see cref="GradientClipping.GlobalNorm(IEnumerable{NN.Parameter})"/> computes it (not finite when a gradient holds an overflow or a NaN).</param>
/// <param name="Stepped">Whether the parameters were updated (and <see cref="Optimizer.StepCount"/> advanced): false only when the separate form found a non-finite norm and skipped the update.</param>
public readonly record struct BackwardStepResult(bool Fused, double GradientNorm, bool Stepped);
