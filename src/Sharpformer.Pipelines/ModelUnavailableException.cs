namespace Sharpformer.Pipelines;

/// <summary>
/// The model could not be found: not a local folder, and the Hub could not be reached (or offline mode is on) with
/// nothing cached. The message is one line that says how to point at a local folder instead.
/// </summary>
public sealed class ModelUnavailableException : Exception
{
    /// <summary>Creates the exception with a one-line message.</summary>
    public ModelUnavailableException(string message) : base(message) { }

    /// <summary>Creates the exception with a one-line message and the Hub error behind it.</summary>
    public ModelUnavailableException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>Creates the exception with a generic message.</summary>
    public ModelUnavailableException() : base("The model is not available locally and the Hugging Face Hub could not be reached.") { }
}
