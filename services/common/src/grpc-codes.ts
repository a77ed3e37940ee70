import { status } from "@grpc/grpc-js";

const NAMES: Record<number, string> = {};
for (const [name, value] of Object.entries(status)) {
  if (typeof value === "number") {
    NAMES[value] = name
      .toLowerCase()
      .split("_")
      .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
      .join("");
  }
}

/** The grpc-ecosystem label value of a status code: "OK", "InvalidArgument", "Unavailable", … */
export function grpcCodeName(code: number): string {
  return code === 0 ? "OK" : (NAMES[code] ?? `Code${code}`);
}
