import { beforeEach, describe, expect, it, vi } from "vitest";

const storage = new Map<string, string>();
vi.stubGlobal("localStorage", {
  getItem: (key: string) => storage.get(key) ?? null,
  setItem: (key: string, value: string) => void storage.set(key, value),
});
vi.stubGlobal("document", { cookie: "other=1; deepscreen_csrf=abc%3D%3D; x=y" });
const { credentialHeaders, jobIdOf, rememberJobToken, withJobToken } = await import("./credentials");

beforeEach(() => storage.clear());

describe("credentials", () => {
  it("sends the CSRF cookie's value with changes only", () => {
    expect(credentialHeaders("POST", "/api/auth/logout")).toEqual({ "X-CSRF-Token": "abc==" });
    expect(credentialHeaders("GET", "/api/auth/me")).toEqual({});
  });

  it("sends a job's own token to its routes and every token to the list", () => {
    rememberJobToken("j1", "t1");
    rememberJobToken("j2", "t2");
    expect(credentialHeaders("GET", "/api/jobs/j1/artifacts/report.json")).toEqual({ "X-Job-Token": "t1" });
    expect(credentialHeaders("DELETE", "/api/jobs/j2")).toEqual({ "X-CSRF-Token": "abc==", "X-Job-Token": "t2" });
    expect(credentialHeaders("GET", "/api/jobs")).toEqual({ "X-Job-Token": "t1,t2" });
    expect(credentialHeaders("GET", "/api/jobs/unknown")).toEqual({});
    expect(credentialHeaders("POST", "/api/jobs")).toEqual({ "X-CSRF-Token": "abc==" });
  });

  it("puts the token in URLs the browser loads by itself", () => {
    rememberJobToken("j1", "a/b");
    expect(withJobToken("/api/jobs/j1/events", "j1")).toBe("/api/jobs/j1/events?token=a%2Fb");
    expect(withJobToken("/x?y=1", "j1")).toBe("/x?y=1&token=a%2Fb");
    expect(withJobToken("/api/jobs/j9/events", "j9")).toBe("/api/jobs/j9/events");
    expect(jobIdOf("/api/jobs/abc/events")).toBe("abc");
    expect(jobIdOf("/api/jobs")).toBeNull();
  });
});
