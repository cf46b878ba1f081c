namespace QuantSharp.IO.Tokenization;

/// <summary>
/// An entry of tokenizer.json's "added_tokens": text that is cut out of the input before pre-tokenization and maps
/// straight to its id (special tokens such as &lt;|begin_of_text|&gt;, and user-added words).
/// </summary>
/// <param name="Normalized">Matched against normalized text (true) or the raw input (false).</param>
/// <param name="SingleWord">Only matches when not glued to a letter or digit on either side.</param>
/// <param name="LStrip">A match also swallows the whitespace before it.</param>
/// <param name="RStrip">A match also swallows the whitespace after it.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord = false, bool LStrip = false,
    bool RStrip = false, bool Normalized = false);
