import { describe, expect, it } from "vitest";

import { shareUrl } from "./shares";

describe("shareUrl", () => {
  it("opens the web app's read-only route when the API gives only a token", () => {
    expect(shareUrl({ token: "a b", url: "" }, "https://ds.example")).toBe("https://ds.example/shared/a%20b");
  });
  it("prefers the API's own URL, made absolute", () => {
    expect(shareUrl({ token: "t", url: "/shared/t" }, "https://ds.example")).toBe("https://ds.example/shared/t");
  });
});
