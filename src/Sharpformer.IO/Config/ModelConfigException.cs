namespace Sharpformer.IO.Config;

/// <summary>
/// A config.json that cannot be read or fails validation. The message names the source (file path or "inline JSON"),
/// the offending key and how to fix it.
/// </summary>
public sealed class ModelConfigException : Exception
{
    /// <summary>Creates the exception with a message that names the source and the problem.</summary>
    public ModelConfigException(string message) : base(message) { }

    /// <summary>Creates the exception with a message and the parser error that caused it.</summary>
    public ModelConfigException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception with a default message.</summary>
    public ModelConfigException() : base("Invalid config.json.") { }
}
