const numbers = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

export const count = (value: number): string => numbers.format(value);

export function bytes(value: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? size : size.toFixed(1)} ${units[unit]}`;
}

export const time = (iso: string): string => new Date(iso).toLocaleString();
