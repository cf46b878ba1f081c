global using Xunit;
global using QuantSharp.Tests.Support;
