namespace Sharpformer.Training.Tests.Reference;

/// <summary>
/// The PyTorch update the training fixtures ran, written out for the tests as an oracle (not the library's optimizer):
/// <c>torch.nn.utils.clip_grad_norm_</c> and torch 1.13's single-tensor <c>torch.optim.AdamW</c> step, float32 state,
/// over plain arrays. It lets the fixture's 10-step run be replayed on our gradients before the trainer exists, and
/// gives the trainer's test a line-by-line statement of what it must match.
/// </summary>
internal sealed class TorchAdamWOracle(double beta1, double beta2, double eps)
{
    // torch turns the Python (double) scalars into float32 for the float32 kernels.
    private readonly float _beta1 = (float)beta1;
    private readonly float _beta2 = (float)beta2;
    private readonly float _oneMinusBeta1 = (float)(1 - beta1);
    private readonly float _oneMinusBeta2 = (float)(1 - beta2);
    private readonly float _eps = (float)eps;

    private readonly Dictionary<string, (float[] ExpAvg, float[] ExpAvgSq)> _state = new(StringComparer.Ordinal);
    private int _step;

    /// <summary>
    /// clip_grad_norm_: the L2 norm over every gradient (returned, before clipping), then every gradient scaled by
    /// min(1, maxNorm / (norm + 1e-6)).
    /// </summary>
    /// <param name="grads">The gradients, scaled in place.</param>
    /// <param name="maxNorm">The clipping threshold.</param>
    /// <returns>The total norm before clipping.</returns>
    public static double ClipGradNorm(IEnumerable<float[]> grads, double maxNorm)
    {
        var all = grads.ToList();
        double sumSquares = 0;
        foreach (var g in all)
        {
            foreach (float x in g)
            {
                sumSquares += (double)x * x;
            }
        }

        double norm = Math.Sqrt(sumSquares);
        float coef = (float)Math.Min(1.0, maxNorm / (norm + 1e-6));
        foreach (var g in all)
        {
            for (int i = 0; i < g.Length; i++)
            {
                g[i] *= coef;
            }
        }

        return norm;
    }

    /// <summary>Counts one optimizer step (torch keeps a step per parameter; they advance together here).</summary>
    public void BeginStep() => _step++;

    /// <summary>
    /// One AdamW update of one parameter, in torch's order: p *= 1 − lr·wd; m = β1·m + (1 − β1)·g;
    /// v = β2·v + (1 − β2)·g²; p −= lr / (1 − β1^t) · m / (sqrt(v) / sqrt(1 − β2^t) + ε).
    /// </summary>
    /// <param name="name">The parameter's name (its state key).</param>
    /// <param name="param">The values, updated in place.</param>
    /// <param name="grad">Its gradient (after clipping).</param>
    /// <param name="lr">This step's learning rate.</param>
    /// <param name="weightDecay">The parameter's group weight decay.</param>
    public void Update(string name, float[] param, float[] grad, double lr, double weightDecay)
    {
        if (!_state.TryGetValue(name, out var state))
        {
            state = (new float[param.Length], new float[param.Length]);
            _state[name] = state;
        }

        var (m, v) = state;
        double biasCorrection1 = 1 - Math.Pow(beta1, _step);
        double biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(beta2, _step));
        float decay = (float)(1 - (lr * weightDecay));
        float stepSize = (float)(lr / biasCorrection1);
        for (int i = 0; i < param.Length; i++)
        {
            param[i] *= decay;
            m[i] = (m[i] * _beta1) + (_oneMinusBeta1 * grad[i]);
            v[i] = (v[i] * _beta2) + (_oneMinusBeta2 * grad[i] * grad[i]);
            float denom = (MathF.Sqrt(v[i]) / (float)biasCorrection2Sqrt) + _eps;
            param[i] -= stepSize * m[i] / denom;
        }
    }
}
