import { describe, expect, it, vi } from "vitest";

vi.stubGlobal("location", { origin: "http://deepscreen.test" });
const { ApiError } = await import("./client");

describe("ApiError.fromBody", () => {
  it("keeps the API's code, message, details and request id", () => {
    const error = ApiError.fromBody(415, {
      error: { code: "unsupported_media", message: "Not an image or video.", details: { accepted: ["JPEG image"] } },
      request_id: "abc",
    });
    expect(error).toMatchObject({ status: 415, code: "unsupported_media", message: "Not an image or video.", requestId: "abc" });
    expect(error.details).toEqual({ accepted: ["JPEG image"] });
  });

  it("explains answers that are not the API's shape by their status", () => {
    expect(ApiError.fromBody(413, "<html>Request Entity Too Large</html>").code).toBe("too_large");
    expect(ApiError.fromBody(0, null).code).toBe("network");
    expect(ApiError.fromBody(502, null).code).toBe("unavailable");
    expect(ApiError.fromBody(409, null).code).toBe("http_409");
  });
});
