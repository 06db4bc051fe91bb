// /api/docs in Chromium with every request off the loopback refused: the page must render the
// API's operations from assets the API serves itself. Prints one JSON object on stdout.
// Inputs (environment): E2E_BASE_URL, E2E_CHROMIUM. Started by tests/e2e/test_docs.py.
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { chromium } = createRequire(join(repoRoot, "frontend", "package.json"))("playwright-core");
const BASE = process.env.E2E_BASE_URL;
const base = new URL(BASE);

const browser = await chromium.launch({
  executablePath: process.env.E2E_CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const outcome = { refused: [], consoleErrors: [], title: null, operations: 0, schemes: [] };
try {
  const context = await browser.newContext({ baseURL: BASE });
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    if (url.host === base.host) return route.continue();
    outcome.refused.push(url.href);
    return route.abort("internetdisconnected");
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") outcome.consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => outcome.consoleErrors.push(String(error)));
  await page.goto("/docs"); // the old address redirects to /api/docs
  await page.waitForSelector(".swagger-ui .info .title", { timeout: 30_000 });
  await page.waitForSelector(".opblock", { timeout: 30_000 });
  outcome.url = page.url();
  outcome.title = (await page.textContent(".swagger-ui .info .title"))?.trim() ?? null;
  outcome.operations = await page.locator(".opblock").count();
  await page.click("button.authorize");
  await page.waitForSelector(".modal-ux", { timeout: 10_000 });
  outcome.schemes = await page.locator(".modal-ux .auth-container h4").allTextContents();
} catch (error) {
  outcome.error = String(error);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(outcome) + "\n");
