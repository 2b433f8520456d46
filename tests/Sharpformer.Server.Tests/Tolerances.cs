namespace Sharpformer.Server.Tests;

/// <summary>The numeric tolerances of the server tests, stated once.</summary>
internal static class Tolerances
{
    /// <summary>An embedding served over HTTP against the pipeline run in the test: the same math, the thread pool may split sums differently.</summary>
    public const float Embedding = 1e-6f;
}
