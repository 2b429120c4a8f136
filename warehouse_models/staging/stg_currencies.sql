-- ISO 4217 minor-unit exponents (written into every store from regions.money), so models never guess them.
SELECT currency, exponent
FROM currencies;
