namespace Sharpformer.IO.Config;

/// <summary>Checks shared by the config records; each failure names the source, the key and the value.</summary>
internal static class ConfigValidation
{
    /// <summary>Activation names transformers' ACT2FN accepts.</summary>
    public static readonly IReadOnlySet<string> KnownActivations = new HashSet<string>(StringComparer.Ordinal)
    {
        "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "gelu_accurate", "gelu_python", "gelu_10", "quick_gelu",
        "relu", "relu2", "relu6", "leaky_relu", "silu", "swish", "tanh", "sigmoid", "mish", "linear", "laplace",
    };

    public static int Positive(string source, string key, int value)
    {
        if (value <= 0)
            throw new ModelConfigException($"{source}: '{key}' must be positive, got {value}.");
        return value;
    }

    public static double PositiveReal(string source, string key, double value)
    {
        if (!(value > 0) || double.IsInfinity(value))
            throw new ModelConfigException($"{source}: '{key}' must be a positive finite number, got {value}.");
        return value;
    }

    public static double Probability(string source, string key, double value)
    {
        if (!(value >= 0 && value <= 1))
            throw new ModelConfigException($"{source}: '{key}' must be in [0, 1], got {value}.");
        return value;
    }

    public static string Activation(string source, string key, string value)
    {
        if (!KnownActivations.Contains(value))
            throw new ModelConfigException(
                $"{source}: '{key}' is '{value}', which is not a known activation; use one of: {string.Join(", ", KnownActivations.Order(StringComparer.Ordinal))}.");
        return value;
    }

    public static void DivisibleHeads(string source, string sizeKey, int size, string headsKey, int heads)
    {
        if (size % heads != 0)
            throw new ModelConfigException(
                $"{source}: '{sizeKey}' ({size}) must be divisible by '{headsKey}' ({heads}) so each head gets the same width.");
    }
}
